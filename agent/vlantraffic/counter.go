package vlantraffic

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Hooks the programs attach with.
const (
	HookTCX    = "tcx"
	HookClsact = "clsact"
	// HookNone is reported when nothing counts.
	HookNone = "none"
)

// Port is one link to count on, and the VLANs it carries.
type Port struct {
	Name  string
	Index int
	// AllowAll is set where the port itself filters no VLAN: a port of a
	// bridge without vlan_filtering, of OVS, or of a bond.
	AllowAll bool
	// Allowed are the VLAN IDs the port carries, tagged or as its PVID.
	Allowed []int
	// Untagged says whether untagged frames are accepted (a PVID is set, or
	// the link is no bridge port).
	Untagged bool
}

// Counts are one VLAN's counters on one port. Rx and Disallowed are counted
// at ingress, Tx at egress; a disallowed frame counts in Rx too.
type Counts struct {
	RxPackets, RxBytes                 uint64
	TxPackets, TxBytes                 uint64
	DisallowedPackets, DisallowedBytes uint64
}

func (c Counts) add(o Counts) Counts {
	return Counts{
		RxPackets: c.RxPackets + o.RxPackets, RxBytes: c.RxBytes + o.RxBytes,
		TxPackets: c.TxPackets + o.TxPackets, TxBytes: c.TxBytes + o.TxBytes,
		DisallowedPackets: c.DisallowedPackets + o.DisallowedPackets, DisallowedBytes: c.DisallowedBytes + o.DisallowedBytes,
	}
}

func (c Counts) zero() bool { return c == Counts{} }

// Labels of the series that are not one VLAN.
const (
	LabelUntagged = "untagged"
	LabelOther    = "other"
)

// Sample is one exported series: a port and a VLAN label (an ID in use,
// "untagged" or "other").
type Sample struct {
	Interface string
	VLAN      string
	Counts
}

// Counter attaches the programs to ports of one network namespace and reads
// their maps. Build it with New; it is safe for concurrent use.
type Counter struct {
	ns     netns.NsHandle
	handle *netlink.Handle // clsact qdiscs and filters
	spec   *ebpf.CollectionSpec

	forced string // WithHook: the only hook to try

	mu    sync.Mutex
	hook  string // HookTCX or HookClsact, decided by the first attach
	ports map[portKey]*attachment
	inUse map[int]bool
}

// portKey tells a re-created link from its predecessor of the same name.
type portKey struct {
	name  string
	index int
}

// attachment is one port's maps, programs and hooks.
type attachment struct {
	coll     *ebpf.Collection
	counters *ebpf.Memory
	allowed  *ebpf.Memory
	detach   func() error
}

// Option changes how a Counter attaches.
type Option func(*Counter)

// WithHook forces a hook instead of tcx with the clsact fallback, for tests
// of either path on one kernel.
func WithHook(hook string) Option { return func(c *Counter) { c.forced = hook } }

// New checks that this process can load the programs and returns a Counter
// for the namespace ns (netns.None() for its own). The error says why not
// (no BPF support, or no CAP_BPF/CAP_SYS_ADMIN): the caller degrades to
// Disabled with it.
func New(ns netns.NsHandle, opts ...Option) (*Counter, error) {
	c := &Counter{ns: ns, spec: collectionSpec(), ports: map[portKey]*attachment{}, inUse: map[int]bool{}}
	for _, o := range opts {
		o(c)
	}
	// Loading once proves the kernel takes the programs and we may load them.
	probe, err := ebpf.NewCollection(c.spec)
	if err != nil {
		return nil, fmt.Errorf("loading the per-VLAN counting programs: %w", err)
	}
	probe.Close()
	if c.handle, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return c, nil
}

// Hook says how the programs are attached ("none" before the first port).
func (c *Counter) Hook() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hook == "" || len(c.ports) == 0 {
		return HookNone
	}
	return c.hook
}

// Sync attaches to new ports, detaches from ports that are gone, and
// rewrites every port's allowed VLANs. inUse are the VLANs exported by name;
// the others are summed as "other". Errors name their port; the other ports
// are synced regardless.
func (c *Counter) Sync(ports []Port, inUse []int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inUse = make(map[int]bool, len(inUse))
	for _, id := range inUse {
		c.inUse[id] = true
	}
	var errs []error
	want := make(map[portKey]bool, len(ports))
	for _, p := range ports {
		key := portKey{p.Name, p.Index}
		want[key] = true
		a, ok := c.ports[key]
		if !ok {
			var err error
			if a, err = c.attach(p); err != nil {
				errs = append(errs, fmt.Errorf("port %s: %w", p.Name, err))
				continue
			}
			c.ports[key] = a
		}
		if err := a.setAllowed(p); err != nil {
			errs = append(errs, fmt.Errorf("port %s: allowed VLANs: %w", p.Name, err))
		}
	}
	for key, a := range c.ports {
		if !want[key] {
			a.close() // the link may be gone already: nothing to report
			delete(c.ports, key)
		}
	}
	return errors.Join(errs...)
}

// Samples reads every port's counters: one sample per VLAN in use that saw
// traffic, plus "untagged" and "other" when they did.
func (c *Counter) Samples() []Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Sample
	buf := make([]byte, MaxVLANs*valueSize)
	for key, a := range c.ports {
		if _, err := a.counters.ReadAt(buf, 0); err != nil {
			continue // cannot happen for a mapped array of this size
		}
		out = append(out, aggregate(key.name, decodeCounts(buf), c.inUse)...)
	}
	slices.SortFunc(out, func(a, b Sample) int {
		if c := cmp.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		return compareVLANLabels(a.VLAN, b.VLAN)
	})
	return out
}

// Close detaches everything.
func (c *Counter) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, a := range c.ports {
		a.close()
		delete(c.ports, key)
	}
	c.handle.Close()
}

// decodeCounts turns the counters map's memory into one Counts per VLAN ID.
func decodeCounts(buf []byte) []Counts {
	out := make([]Counts, len(buf)/valueSize)
	for i := range out {
		v := buf[i*valueSize:]
		u := func(off int) uint64 { return binary.LittleEndian.Uint64(v[off:]) }
		out[i] = Counts{
			RxPackets: u(offRxPackets), RxBytes: u(offRxBytes),
			TxPackets: u(offTxPackets), TxBytes: u(offTxBytes),
			DisallowedPackets: u(offDisallowedPackets), DisallowedBytes: u(offDisallowedBytes),
		}
	}
	return out
}

// aggregate names each VLAN's counts: ID 0 is "untagged", IDs in use keep
// their number, every other ID is summed into "other". Series without
// traffic are left out, so a port exports at most len(inUse)+2 of them.
func aggregate(port string, byVID []Counts, inUse map[int]bool) []Sample {
	var out []Sample
	var other Counts
	for vid, counts := range byVID {
		switch {
		case counts.zero():
		case vid == 0:
			out = append(out, Sample{Interface: port, VLAN: LabelUntagged, Counts: counts})
		case inUse[vid]:
			out = append(out, Sample{Interface: port, VLAN: strconv.Itoa(vid), Counts: counts})
		default:
			other = other.add(counts)
		}
	}
	if !other.zero() {
		out = append(out, Sample{Interface: port, VLAN: LabelOther, Counts: other})
	}
	return out
}

// compareVLANLabels orders numbers numerically, then "other", then "untagged".
func compareVLANLabels(a, b string) int {
	ai, aErr := strconv.Atoi(a)
	bi, bErr := strconv.Atoi(b)
	switch {
	case aErr == nil && bErr == nil:
		return ai - bi
	case aErr == nil:
		return -1
	case bErr == nil:
		return 1
	}
	return cmp.Compare(a, b)
}

// allowedBytes is the allowed map's content for a port: 1 for each VLAN ID
// it carries, index 0 for untagged frames.
func allowedBytes(p Port) []byte {
	buf := make([]byte, MaxVLANs*allowedValueSize)
	set := func(vid int) {
		if vid >= 0 && vid < MaxVLANs {
			binary.LittleEndian.PutUint64(buf[vid*allowedValueSize:], 1)
		}
	}
	if p.AllowAll {
		for vid := range MaxVLANs {
			set(vid)
		}
		return buf
	}
	for _, vid := range p.Allowed {
		if vid > 0 {
			set(vid)
		}
	}
	if p.Untagged {
		set(0)
	}
	return buf
}

func (a *attachment) setAllowed(p Port) error {
	_, err := a.allowed.WriteAt(allowedBytes(p), 0)
	if err != nil {
		return fmt.Errorf("write allowed VLANs of port %s: %w", p.Name, err)
	}
	return nil
}

func (a *attachment) close() {
	if a.detach != nil {
		_ = a.detach()
	}
	a.coll.Close()
}

// attach loads the port's maps and programs and hooks them to both directions.
func (c *Counter) attach(p Port) (*attachment, error) {
	coll, err := ebpf.NewCollection(c.spec)
	if err != nil {
		return nil, fmt.Errorf("loading programs: %w", err)
	}
	a := &attachment{coll: coll}
	if a.counters, err = coll.Maps[countersMap].Memory(); err == nil {
		a.allowed, err = coll.Maps[allowedMap].Memory()
	}
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("mapping counters: %w", err)
	}
	in, out := coll.Programs["ingress"], coll.Programs["egress"]
	if c.forced != HookClsact && c.hook != HookClsact {
		a.detach, err = c.attachTCX(p.Index, in, out)
		if err == nil {
			c.hook = HookTCX
			return a, nil
		}
		if c.forced == HookTCX || !errors.Is(err, ebpf.ErrNotSupported) {
			coll.Close()
			return nil, fmt.Errorf("tcx: %w", err)
		}
		// The kernel predates tcx (Linux 6.6): cls_bpf on clsact.
	}
	if a.detach, err = c.attachClsact(p.Index, in, out); err != nil {
		coll.Close()
		return nil, fmt.Errorf("clsact: %w", err)
	}
	c.hook = HookClsact
	return a, nil
}

// attachTCX links both programs through tcx. The target ifindex is read in
// the calling thread's namespace, so the attach runs inside ns.
func (c *Counter) attachTCX(ifindex int, in, out *ebpf.Program) (func() error, error) {
	var links []link.Link
	err := c.inNamespace(func() error {
		for _, side := range []struct {
			prog   *ebpf.Program
			attach ebpf.AttachType
		}{{in, ebpf.AttachTCXIngress}, {out, ebpf.AttachTCXEgress}} {
			l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: side.prog, Attach: side.attach})
			if err != nil {
				return fmt.Errorf("attach TCX program to ifindex %d: %w", ifindex, err)
			}
			links = append(links, l)
		}
		return nil
	})
	closeAll := func() error {
		var errs []error
		for _, l := range links {
			errs = append(errs, l.Close())
		}
		return errors.Join(errs...)
	}
	if err != nil {
		_ = closeAll()
		return nil, err
	}
	return closeAll, nil
}

// clsactPriority and clsactHandle mark our cls_bpf filters. Re-attaching
// replaces a filter a killed agent left behind instead of adding a second.
const (
	clsactPriority = 0xc0de
	clsactHandle   = 1
)

// attachClsact adds (or keeps) a clsact qdisc and replaces our filter in
// each direction. Unlike tcx links, filters outlive the process: the
// returned detach removes them.
func (c *Counter) attachClsact(ifindex int, in, out *ebpf.Program) (func() error, error) {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := c.handle.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("adding the clsact qdisc: %w", err)
	}
	filter := func(parent uint32, prog *ebpf.Program, name string) *netlink.BpfFilter {
		return &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: ifindex, Parent: parent, Handle: clsactHandle,
				Priority: clsactPriority, Protocol: unix.ETH_P_ALL,
			},
			Fd: prog.FD(), Name: name, DirectAction: true,
		}
	}
	filters := []*netlink.BpfFilter{
		filter(netlink.HANDLE_MIN_INGRESS, in, "vmop_vlan_in"),
		filter(netlink.HANDLE_MIN_EGRESS, out, "vmop_vlan_out"),
	}
	detach := func() error {
		var errs []error
		for _, f := range filters {
			if err := c.handle.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for _, f := range filters {
		if err := c.handle.FilterReplace(f); err != nil {
			_ = detach()
			return nil, fmt.Errorf("adding the %s filter: %w", f.Name, err)
		}
	}
	return detach, nil
}

// inNamespace runs fn on a locked OS thread inside c.ns (or as it is, for
// the caller's own namespace).
func (c *Counter) inNamespace(fn func() error) error {
	if !c.ns.IsOpen() {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		// This goroutine ends with its thread locked, so the runtime retires
		// the thread rather than reuse it in the wrong namespace.
		runtime.LockOSThread()
		if err := netns.Set(c.ns); err != nil {
			done <- fmt.Errorf("entering the network namespace: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}
