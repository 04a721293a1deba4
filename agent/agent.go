package agent

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/liveness"
	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/verify"
	"github.com/jianfenliu/vmoperator/agent/vlantraffic"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
)

// PolicyVerifier compares the nmstate policies selecting this node with the
// links the kernel shows.
type PolicyVerifier interface {
	Verify(ctx context.Context, kernel verify.Kernel) ([]vmv1alpha1.PolicyVerification, error)
}

// VLANCounter keeps per-VLAN counters attached to the ports Plan picks
// (vlantraffic.Counter, or vlantraffic.Disabled where it cannot).
type VLANCounter interface {
	Sync(ports []vlantraffic.Port, inUse []int) error
	Hook() string
	// Samples reads the counters; the metrics call it at every scrape.
	Samples() []vlantraffic.Sample
}

// Publisher stores the status and says whether it had to write.
type Publisher interface {
	Publish(ctx context.Context, status vmv1alpha1.NodeCapabilityStatus) (bool, error)
}

// Agent probes one node. Build it with New.
type Agent struct {
	kvm          probe.KVMProber
	links        probe.LinkProber
	sriov        probe.SRIOVProber
	verifier     PolicyVerifier // nil: no policy verification
	vlans        VLANCounter    // nil: no per-VLAN counters
	vlanMaxPorts int            // most ports counted; 0: no limit
	rounds       *liveness.Loop // nil: rounds are not tracked for /healthz
	publisher    Publisher
	metrics      *agentmetrics.Node
	extraUplinks []string
	log          logr.Logger

	// Results of the last full round, reused by event rounds: netlink events
	// say nothing about KVM or sysfs SR-IOV counts.
	kvmStatus  vmv1alpha1.KVMStatus
	pfs        []vmv1alpha1.SRIOVPF
	sriovProbe capability.Outcome

	// The last good result of each probe, reported again while it fails: a
	// transient netlink or sysfs error must not empty the inventory that
	// placement reads.
	lastPFs      lastGood[[]vmv1alpha1.SRIOVPF]
	lastLinks    lastGood[probe.Snapshot]
	lastVLANs    lastGood[probe.BridgeVLANs]
	lastPolicies lastGood[[]vmv1alpha1.PolicyVerification]
	// vlanCounting is how the last attach went, reported again by rounds
	// whose link dump failed.
	vlanCounting capability.VLANCounting

	// lastPublished is when a round last got the stored status in line
	// (written or found equal), in Unix nanoseconds; read by health checks.
	lastPublished atomic.Int64
}

// LastPublished is when the stored NodeCapability was last known to be
// current; zero before the first successful round.
func (a *Agent) LastPublished() time.Time {
	ns := a.lastPublished.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Option sets an optional part of the agent.
type Option func(*Agent)

// WithPolicyVerifier turns policy verification on.
func WithPolicyVerifier(v PolicyVerifier) Option { return func(a *Agent) { a.verifier = v } }

// WithVLANCounter keeps per-VLAN counters on the node's uplinks and bridge
// ports, re-planned every round whose link dump succeeded.
func WithVLANCounter(v VLANCounter) Option { return func(a *Agent) { a.vlans = v } }

// WithVLANPortLimit counts on at most limit ports (vlantraffic.Limit), so
// the counters' memory does not grow with the node's links.
func WithVLANPortLimit(limit int) Option { return func(a *Agent) { a.vlanMaxPorts = limit } }

// WithRoundLiveness reports the start and end of every round to l, so a
// health check can tell when the round loop is wedged.
func WithRoundLiveness(l *liveness.Loop) Option { return func(a *Agent) { a.rounds = l } }

// WithExtraUplinks reports these links as uplinks besides NICs and bonds.
func WithExtraUplinks(names ...string) Option {
	return func(a *Agent) { a.extraUplinks = append(a.extraUplinks, names...) }
}

// New wires an agent from its probes, publisher and metrics.
func New(kvm probe.KVMProber, links probe.LinkProber, sriov probe.SRIOVProber, pub Publisher, m *agentmetrics.Node, log logr.Logger, opts ...Option) *Agent {
	a := &Agent{kvm: kvm, links: links, sriov: sriov, publisher: pub, metrics: m, log: log}
	for _, o := range opts {
		o(a)
	}
	if a.vlans != nil {
		m.SetVLANSource(func() []agentmetrics.VLANSample { return vlanSamples(a.vlans.Samples()) })
	}
	return a
}

// Retry delays after a failed publish: the next event or resync may be
// minutes away, and a stale capability misleads placement.
const (
	firstRetry = time.Second
	maxRetry   = time.Minute
)

// Run runs rounds as w decides until ctx ends. A failed publish asks w for
// another round after a growing delay.
func (a *Agent) Run(ctx context.Context, w *watch.Watcher) {
	retry := firstRetry
	w.Run(ctx, func(ctx context.Context, r watch.Round) bool {
		a.rounds.Begin()
		defer a.rounds.End()
		wrote, err := a.Round(ctx, r)
		if err == nil {
			retry = firstRetry
			return wrote
		}
		if ctx.Err() == nil {
			a.log.Error(err, "publishing NodeCapability failed", "retryIn", retry)
			time.AfterFunc(retry, w.Kick)
			retry = min(2*retry, maxRetry)
		}
		return wrote
	})
}

// Round probes, verifies, publishes and updates metrics once, and says
// whether it wrote. Probe failures end up in the status (as conditions,
// with the last good data kept); only a failed publish is an error.
func (a *Agent) Round(ctx context.Context, r watch.Round) (bool, error) {
	if r == watch.RoundFull {
		a.probeHost()
	}
	in := capability.Input{KVM: a.kvmStatus, SRIOV: a.pfs, SRIOVProbe: a.sriovProbe, ExtraUplinks: a.extraUplinks}
	linksFresh := a.probeLinks(&in)
	a.verifyPolicies(ctx, &in, linksFresh)
	a.countVLANs(&in, linksFresh)
	status := capability.Build(in)
	a.recordMetrics(in, linksFresh)
	wrote, err := a.publisher.Publish(ctx, status)
	if err == nil {
		a.lastPublished.Store(time.Now().UnixNano())
	}
	if wrote {
		a.log.V(1).Info("NodeCapability written", "round", r)
	}
	return wrote, err
}

func (a *Agent) probeHost() {
	timed(a.metrics, "kvm", func() { a.kvmStatus = a.kvm.ProbeKVM() })
	var result probe.SRIOVResult
	var err error
	timed(a.metrics, "sriov", func() { result, err = a.sriov.ProbeSRIOV() })
	a.logProbe("sriov", err, result.Skipped)
	a.pfs, a.sriovProbe = a.lastPFs.take(result.PFs, err, result.Skipped)
}

// probeLinks fills in the links with their bridge VLANs: this round's where
// the dumps succeeded, the last good ones where they failed. It says
// whether the links are this round's.
func (a *Agent) probeLinks(in *capability.Input) bool {
	var snap probe.Snapshot
	var err error
	timed(a.metrics, "links", func() { snap, err = a.links.ProbeLinks() })
	a.logProbe("links", err, snap.Skipped)
	if err != nil {
		// Without this round's links the VLAN table cannot be named, so the
		// kept links keep the VLANs they were reported with.
		in.Links, in.LinksProbe = a.lastLinks.take(probe.Snapshot{}, err, nil)
		in.BridgeVLANsProbe = capability.Outcome{Err: errors.New("not probed: the link dump failed"), Kept: a.lastLinks.have}
		return false
	}
	var vlans probe.BridgeVLANs
	timed(a.metrics, "bridge_vlans", func() { vlans, err = a.links.ProbeBridgeVLANs(snap) })
	a.logProbe("bridge_vlans", err, nil)
	vlans, in.BridgeVLANsProbe = a.lastVLANs.take(vlans, err, nil)
	in.Links, in.LinksProbe = a.lastLinks.take(snap.WithVLANs(vlans), nil, snap.Skipped)
	return true
}

// verifyPolicies checks the policies against this round's links. Without
// them it reports the last verdicts rather than vouch for a kernel nobody
// looked at this round; NetworkReady then says the links failed.
func (a *Agent) verifyPolicies(ctx context.Context, in *capability.Input, linksFresh bool) {
	if a.verifier == nil {
		return
	}
	if !linksFresh {
		in.Policies = a.lastPolicies.data
		return
	}
	var policies []vmv1alpha1.PolicyVerification
	var err error
	timed(a.metrics, "policies", func() { policies, err = a.verifier.Verify(ctx, verify.Kernel{Links: in.Links, PFs: in.SRIOV}) })
	a.logProbe("policies", err, nil)
	var outcome capability.Outcome
	in.Policies, outcome = a.lastPolicies.take(policies, err, nil)
	in.PoliciesErr = outcome.Err
}

// countVLANs moves the per-VLAN counters to this round's ports. Without
// this round's links it leaves them where they are.
func (a *Agent) countVLANs(in *capability.Input, linksFresh bool) {
	if a.vlans == nil {
		return
	}
	if linksFresh {
		ports, inUse := vlantraffic.Plan(in.Links, capability.RelevantLinks(in.Links, in.ExtraUplinks, pfNames(in.SRIOV)))
		ports, cut := vlantraffic.Limit(ports, a.vlanMaxPorts)
		if cut > 0 && a.vlanCounting.Cut == 0 {
			a.log.Error(fmt.Errorf("%d more ports than --vlan-counter-max-ports=%d", cut, a.vlanMaxPorts), "per-VLAN counters are not attached everywhere")
		}
		var err error
		timed(a.metrics, "vlan_counters", func() { err = a.vlans.Sync(ports, inUse) })
		if err != nil && (a.vlanCounting.Err == nil || err.Error() != a.vlanCounting.Err.Error()) {
			a.log.Error(err, "per-VLAN counters are not attached everywhere")
		}
		a.vlanCounting = capability.VLANCounting{Hook: a.vlans.Hook(), Err: err, Unavailable: errors.Is(err, vlantraffic.ErrUnavailable),
			Counted: len(ports), Cut: cut, MaxPorts: a.vlanMaxPorts}
	}
	counting := a.vlanCounting
	in.VLANCounting = &counting
}

// logProbe logs a failed or partial probe under its name; success is quiet.
func (a *Agent) logProbe(name string, err error, skipped []probe.Skipped) {
	if err != nil {
		a.log.Error(err, "probe failed; the status keeps its last good results", "probe", name)
	}
	for _, s := range skipped {
		a.log.Error(errors.New(s.Reason), "probe skipped an entry", "probe", name, "entry", s.Name)
	}
}

// lastGood keeps a probe's last successful result.
type lastGood[T any] struct {
	data T
	have bool
}

// take records one run of the probe: on success its data becomes the last
// good one; on failure the last good data comes back, with an outcome that
// says it was kept (or that there was none).
func (l *lastGood[T]) take(data T, err error, skipped []probe.Skipped) (T, capability.Outcome) {
	if err != nil {
		return l.data, capability.Outcome{Err: err, Kept: l.have}
	}
	l.data, l.have = data, true
	return data, capability.Outcome{Skipped: skipped}
}

func timed(m *agentmetrics.Node, name string, fn func()) {
	start := time.Now()
	fn()
	m.ProbeDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
}

// recordMetrics exports what the status reports, except that link samples
// come only from this round's dump: kept links would repeat old counters.
func (a *Agent) recordMetrics(in capability.Input, linksFresh bool) {
	a.metrics.SetKVM(in.KVM.Available)
	pfSamples := make([]agentmetrics.PFSample, 0, len(in.SRIOV))
	for _, pf := range in.SRIOV {
		pfSamples = append(pfSamples, agentmetrics.PFSample{Name: pf.Name, Total: int(pf.TotalVFs), Configured: int(pf.NumVFs), InUse: int(pf.VFsInUse)})
	}
	a.metrics.SetSRIOV(pfSamples)
	verified := 0
	for _, p := range in.Policies {
		if p.Verified {
			verified++
		}
	}
	a.metrics.SetPolicies(verified, len(in.Policies)-verified)
	if linksFresh {
		a.metrics.SetLinks(linkSamples(capability.RelevantLinks(in.Links, in.ExtraUplinks, pfNames(in.SRIOV))))
	}
	if v := in.VLANCounting; v != nil {
		a.metrics.SetVLANCounting(!v.Unavailable && v.Err == nil && v.Cut == 0)
		counted := v.Counted
		if v.Unavailable {
			counted = 0
		}
		a.metrics.SetVLANCounterPorts(counted, v.Cut)
	}
}

func pfNames(pfs []vmv1alpha1.SRIOVPF) []string {
	names := make([]string, 0, len(pfs))
	for _, pf := range pfs {
		names = append(names, pf.Name)
	}
	return names
}

func linkSamples(links []capability.RoleLink) []agentmetrics.LinkSample {
	out := make([]agentmetrics.LinkSample, 0, len(links))
	for _, l := range links {
		s := l.Stats
		out = append(out, agentmetrics.LinkSample{
			Name: l.Name, Role: l.Role, Up: l.AdminUp, Carrier: l.Carrier,
			RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxPackets: s.RxPackets, TxPackets: s.TxPackets,
			RxErrors: s.RxErrors, TxErrors: s.TxErrors, RxDropped: s.RxDropped, TxDropped: s.TxDropped,
			CarrierChanges: s.CarrierChanges,
		})
	}
	return out
}

func vlanSamples(in []vlantraffic.Sample) []agentmetrics.VLANSample {
	out := make([]agentmetrics.VLANSample, 0, len(in))
	for _, s := range in {
		out = append(out, agentmetrics.VLANSample{
			Interface: s.Interface, VLAN: s.VLAN,
			RxPackets: s.RxPackets, RxBytes: s.RxBytes, TxPackets: s.TxPackets, TxBytes: s.TxBytes,
			DisallowedPackets: s.DisallowedPackets,
		})
	}
	return out
}
