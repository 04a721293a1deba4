package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/verify"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
)

// scriptedProbes answer what the test set for the next round, so that a
// test can make any probe fail, which real kernels do not do on demand.
type scriptedProbes struct {
	links    probe.Snapshot
	linksErr error
	vlans    probe.BridgeVLANs
	vlansErr error
	sriov    probe.SRIOVResult
	sriovErr error

	policies    []vmv1alpha1.PolicyVerification
	policiesErr error
	verifyCalls int
}

func (p *scriptedProbes) ProbeKVM() vmv1alpha1.KVMStatus {
	return vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}
}

func (p *scriptedProbes) ProbeLinks() (probe.Snapshot, error) {
	if p.linksErr != nil {
		return probe.Snapshot{}, p.linksErr
	}
	return p.links, nil
}

func (p *scriptedProbes) ProbeBridgeVLANs(probe.Snapshot) (probe.BridgeVLANs, error) {
	if p.vlansErr != nil {
		return nil, p.vlansErr
	}
	return p.vlans, nil
}

func (p *scriptedProbes) ProbeSRIOV() (probe.SRIOVResult, error) {
	if p.sriovErr != nil {
		return probe.SRIOVResult{}, p.sriovErr
	}
	return p.sriov, nil
}

func (p *scriptedProbes) Verify(context.Context, verify.Kernel) ([]vmv1alpha1.PolicyVerification, error) {
	p.verifyCalls++
	if p.policiesErr != nil {
		return nil, p.policiesErr
	}
	return p.policies, nil
}

// healthy sets every probe to succeed: a filtering bridge br0 whose port p0
// allows VLANs 1 and 100, one PF, one verified policy.
func (p *scriptedProbes) healthy() {
	*p = scriptedProbes{
		links: probe.Snapshot{Links: []probe.Link{
			{Name: "br0", Index: 1, Kind: probe.KindBridge, AdminUp: true, Carrier: true, VLANFiltering: true, MTU: 1500},
			{Name: "p0", Index: 2, Kind: probe.KindVeth, AdminUp: true, Carrier: true, Master: "br0", MTU: 1500},
		}},
		vlans:       probe.BridgeVLANs{"p0": {IDs: []int{1, 100}, PVID: 1}},
		sriov:       probe.SRIOVResult{PFs: []vmv1alpha1.SRIOVPF{{Name: "ens1", PCIAddress: "0000:5e:00.0", TotalVFs: 8}}},
		policies:    []vmv1alpha1.PolicyVerification{{Name: "br0-policy", Verified: true}},
		verifyCalls: p.verifyCalls,
	}
}

type recordingPublisher struct {
	last vmv1alpha1.NodeCapabilityStatus
}

func (r *recordingPublisher) Publish(_ context.Context, s vmv1alpha1.NodeCapabilityStatus) (bool, error) {
	r.last = s
	return true, nil
}

// wantCondition checks one condition's status and reason, and that its
// message contains text.
func wantCondition(t *testing.T, s vmv1alpha1.NodeCapabilityStatus, typ string, status metav1.ConditionStatus, reason, text string) {
	t.Helper()
	c := meta.FindStatusCondition(s.Conditions, typ)
	if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, text) {
		t.Errorf("%s = %+v, want %s/%s containing %q", typ, c, status, reason, text)
	}
}

func wantInventory(t *testing.T, s vmv1alpha1.NodeCapabilityStatus, portUp bool) {
	t.Helper()
	if len(s.Bridges) != 1 || len(s.Bridges[0].Ports) != 1 {
		t.Fatalf("bridges = %+v, want br0 with port p0", s.Bridges)
	}
	if p := s.Bridges[0].Ports[0]; p.Name != "p0" || p.Up != portUp || p.VLANs != "1,100" || p.PVID != 1 {
		t.Errorf("port = %+v, want p0 up=%v with VLANs 1,100 PVID 1", p, portUp)
	}
	if len(s.SRIOV) != 1 || s.SRIOV[0].Name != "ens1" {
		t.Errorf("sriov = %+v, want ens1", s.SRIOV)
	}
	if len(s.Policies) != 1 || s.Policies[0].Name != "br0-policy" {
		t.Errorf("policies = %+v, want br0-policy", s.Policies)
	}
}

// TestRoundKeepsLastGood: a probe that fails keeps its last good data in
// the status, with a condition naming the probe and saying the data is old;
// a partial probe reports what it read and names what it skipped.
func TestRoundKeepsLastGood(t *testing.T) {
	p := &scriptedProbes{}
	pub := &recordingPublisher{}
	a := New(p, p, p, pub, agentmetrics.NewNode("test"), testr.New(t), WithPolicyVerifier(p))
	linkErr := errors.New("listing links: netlink receive: no buffer space available")
	steps := []struct {
		name  string
		round watch.Round
		set   func()
		check func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus)
	}{
		{
			name: "first round fails: nothing to keep, and the conditions say so", round: watch.RoundFull,
			set: func() { p.linksErr, p.sriovErr = linkErr, errors.New("listing /sys/class/net: permission denied") },
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				if len(s.Bridges) != 0 || len(s.SRIOV) != 0 {
					t.Errorf("inventory from failed probes: %+v %+v", s.Bridges, s.SRIOV)
				}
				wantCondition(t, s, vmv1alpha1.ConditionLinksProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "no probe has succeeded since the agent started, so no links are reported")
				wantCondition(t, s, vmv1alpha1.ConditionSRIOVProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "permission denied; no probe has succeeded")
				wantCondition(t, s, vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "links (ProbeFailed), bridge VLANs (ProbeFailed), SR-IOV (ProbeFailed)")
			},
		},
		{
			name: "all good", round: watch.RoundFull, set: p.healthy,
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, true)
				for _, typ := range []string{vmv1alpha1.ConditionReady, vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionBridgeVLANsProbed, vmv1alpha1.ConditionSRIOVProbed, vmv1alpha1.ConditionNetworkReady} {
					wantCondition(t, s, typ, metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "")
				}
			},
		},
		{
			name: "link dump fails: links, VLANs and policies kept", round: watch.RoundEvents,
			set: func() { p.linksErr = linkErr },
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, true)
				wantCondition(t, s, vmv1alpha1.ConditionLinksProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "no buffer space available; the links reported are from the last successful probe")
				wantCondition(t, s, vmv1alpha1.ConditionBridgeVLANsProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "not probed: the link dump failed; the port VLANs reported are from the last successful probe")
				wantCondition(t, s, vmv1alpha1.ConditionNetworkReady, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "links: ")
				wantCondition(t, s, vmv1alpha1.ConditionSRIOVProbed, metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "")
				wantCondition(t, s, vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "links (ProbeFailed)")
				if p.verifyCalls != 1 {
					t.Errorf("policies verified %d times, want once (not against kept links)", p.verifyCalls)
				}
			},
		},
		{
			name: "links back with p0 down, VLAN dump fails: fresh links, kept VLANs", round: watch.RoundEvents,
			set: func() {
				p.healthy()
				p.links.Links[1].Carrier = false
				p.vlansErr = errors.New("listing bridge VLANs: interrupted 3 times in a row")
			},
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, false)
				wantCondition(t, s, vmv1alpha1.ConditionLinksProbed, metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "")
				wantCondition(t, s, vmv1alpha1.ConditionBridgeVLANsProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "interrupted 3 times in a row; the port VLANs reported are from the last successful probe")
				wantCondition(t, s, vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "bridge VLANs (ProbeFailed)")
			},
		},
		{
			name: "verification fails: policies kept", round: watch.RoundEvents,
			set: func() { p.healthy(); p.policiesErr = errors.New("listing policies: cache stopped") },
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, true)
				wantCondition(t, s, vmv1alpha1.ConditionNetworkReady, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "verifying policies: listing policies: cache stopped; the policies reported are from the last successful verification")
			},
		},
		{
			name: "SR-IOV fails on a full round: PFs kept", round: watch.RoundFull,
			set: func() { p.healthy(); p.sriovErr = errors.New("listing /sys/class/net: input/output error") },
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, true)
				wantCondition(t, s, vmv1alpha1.ConditionSRIOVProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "input/output error; the PFs reported are from the last successful probe")
			},
		},
		{
			name: "event round: SR-IOV not re-probed, its failure still shown", round: watch.RoundEvents,
			set: func() { p.sriovErr = nil },
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantCondition(t, s, vmv1alpha1.ConditionSRIOVProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "input/output error")
			},
		},
		{
			name: "SR-IOV partial: the good PF reported, the bad one named", round: watch.RoundFull,
			set: func() {
				p.sriov.Skipped = []probe.Skipped{{Name: "ens2", Reason: `/sys/class/net/ens2/device/sriov_numvfs: "x" is not a number`}}
			},
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, true)
				wantCondition(t, s, vmv1alpha1.ConditionSRIOVProbed, metav1.ConditionFalse, vmv1alpha1.ReasonProbePartial, `skipped ens2: /sys/class/net/ens2/device/sriov_numvfs: "x" is not a number`)
				wantCondition(t, s, vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonProbePartial, "SR-IOV (ProbePartial)")
			},
		},
		{
			name: "all good again", round: watch.RoundFull, set: p.healthy,
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantInventory(t, s, true)
				wantCondition(t, s, vmv1alpha1.ConditionReady, metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "every probe succeeded")
			},
		},
	}
	for _, step := range steps {
		step.set()
		if _, err := a.Round(context.Background(), step.round); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		t.Run(step.name, func(t *testing.T) { step.check(t, pub.last) })
	}
}
