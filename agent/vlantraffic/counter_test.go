//go:build integration

package vlantraffic_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/jianfenliu/vmoperator/agent/vlantraffic"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// newCounter builds a Counter in ns that is closed when the test ends.
func newCounter(t *testing.T, ns *netnstest.Namespace, opts ...vlantraffic.Option) *vlantraffic.Counter {
	t.Helper()
	c, err := vlantraffic.New(ns.NS, opts...)
	if err != nil {
		t.Fatalf("vlantraffic.New: %v (the host kernel here has BPF, tcx and cls_bpf, and the tests run as root)", err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitForSamples polls until the counters equal want (frames cross a veth
// in softirq, after sendto returns) and fails with the last read if they
// never do. Equality is exact: one frame too many fails too.
func waitForSamples(t *testing.T, c *vlantraffic.Counter, want []vlantraffic.Sample) {
	t.Helper()
	var got []vlantraffic.Sample
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = c.Samples(); slices.Equal(got, want) {
			time.Sleep(100 * time.Millisecond) // and nothing more arrives
			if got = c.Samples(); slices.Equal(got, want) {
				return
			}
		}
	}
	t.Fatalf("samples:\n got %+v\nwant %+v", got, want)
}

// TestCountsEachVLANExactly sends tagged and untagged frames over a veth
// pair, by AF_PACKET, and checks every counter of the receiving end, once
// per hook: the host kernel has both tcx and cls_bpf.
func TestCountsEachVLANExactly(t *testing.T) {
	for _, hook := range []string{vlantraffic.HookTCX, vlantraffic.HookClsact} {
		t.Run(hook, func(t *testing.T) {
			ns := netnstest.New(t)
			ns.NoIPv6(t)
			ns.VethPair(t, "port0", "wire0", "")
			c := newCounter(t, ns, vlantraffic.WithHook(hook))
			port := vlantraffic.Port{Name: "port0", Index: ns.Link(t, "port0").Attrs().Index, Allowed: []int{100}, Untagged: true}
			if err := c.Sync([]vlantraffic.Port{port}, []int{100}); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if got := c.Hook(); got != hook {
				t.Fatalf("Hook() = %q, want %q", got, hook)
			}
			// From the wire into port0 (its ingress), and out of port0.
			ns.Send(t, "wire0", 3, netnstest.Frame(100, 100))
			ns.Send(t, "wire0", 2, netnstest.Frame(200, 80))
			ns.Send(t, "wire0", 7, netnstest.Frame(3000, 70))
			ns.Send(t, "wire0", 4, netnstest.Frame(0, 64))
			ns.Send(t, "port0", 5, netnstest.Frame(100, 90))
			waitForSamples(t, c, []vlantraffic.Sample{
				{Interface: "port0", VLAN: "100", Counts: vlantraffic.Counts{RxPackets: 3, RxBytes: 300, TxPackets: 5, TxBytes: 450}},
				// 200 and 3000 are not in use on the node: one "other" series.
				{Interface: "port0", VLAN: "other", Counts: vlantraffic.Counts{RxPackets: 9, RxBytes: 650, DisallowedPackets: 9, DisallowedBytes: 650}},
				{Interface: "port0", VLAN: "untagged", Counts: vlantraffic.Counts{RxPackets: 4, RxBytes: 256}},
			})

			// Allowing 200 (and using it) changes what later frames count as.
			port.Allowed = []int{100, 200}
			if err := c.Sync([]vlantraffic.Port{port}, []int{100, 200}); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			ns.Send(t, "wire0", 1, netnstest.Frame(200, 80))
			waitForSamples(t, c, []vlantraffic.Sample{
				{Interface: "port0", VLAN: "100", Counts: vlantraffic.Counts{RxPackets: 3, RxBytes: 300, TxPackets: 5, TxBytes: 450}},
				{Interface: "port0", VLAN: "200", Counts: vlantraffic.Counts{RxPackets: 3, RxBytes: 240, DisallowedPackets: 2, DisallowedBytes: 160}},
				{Interface: "port0", VLAN: "other", Counts: vlantraffic.Counts{RxPackets: 7, RxBytes: 490, DisallowedPackets: 7, DisallowedBytes: 490}},
				{Interface: "port0", VLAN: "untagged", Counts: vlantraffic.Counts{RxPackets: 4, RxBytes: 256}},
			})
		})
	}
}

// attachedPrograms counts the programs hooked to link in ns by the given
// hook: tcx links, or cls_bpf filters on clsact.
func attachedPrograms(t *testing.T, ns *netnstest.Namespace, hook, name string) int {
	t.Helper()
	l := ns.Link(t, name)
	if hook == vlantraffic.HookClsact {
		n := 0
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			filters, err := ns.Handle.FilterList(l, parent)
			if err != nil {
				t.Fatalf("filter list: %v", err)
			}
			n += len(filters)
		}
		return n
	}
	n := 0
	for _, attach := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		err := ns.Do(func() error {
			res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: attach})
			if err == nil {
				n += len(res.Programs)
			}
			return err
		})
		if err != nil {
			t.Fatalf("query tcx programs: %v", err)
		}
	}
	return n
}

// TestPortsComeAndGo checks that Sync detaches from ports no longer listed,
// that Close detaches the rest, and that a port re-created under the same
// name gets fresh hooks: the clsact filters outlive the process otherwise.
func TestPortsComeAndGo(t *testing.T) {
	for _, hook := range []string{vlantraffic.HookTCX, vlantraffic.HookClsact} {
		t.Run(hook, func(t *testing.T) {
			ns := netnstest.New(t)
			ns.NoIPv6(t)
			ns.VethPair(t, "a0", "a1", "")
			ns.VethPair(t, "b0", "b1", "")
			c, err := vlantraffic.New(ns.NS, vlantraffic.WithHook(hook))
			if err != nil {
				t.Fatal(err)
			}
			port := func(name string) vlantraffic.Port {
				return vlantraffic.Port{Name: name, Index: ns.Link(t, name).Attrs().Index, AllowAll: true}
			}
			if err := c.Sync([]vlantraffic.Port{port("a0"), port("b0")}, nil); err != nil {
				t.Fatal(err)
			}
			if a, b := attachedPrograms(t, ns, hook, "a0"), attachedPrograms(t, ns, hook, "b0"); a != 2 || b != 2 {
				t.Fatalf("programs attached: a0 %d, b0 %d; want 2 each (ingress, egress)", a, b)
			}
			if err := c.Sync([]vlantraffic.Port{port("b0")}, nil); err != nil {
				t.Fatal(err)
			}
			if a := attachedPrograms(t, ns, hook, "a0"); a != 0 {
				t.Errorf("a0 still has %d programs after it left the port list", a)
			}
			// b0 deleted and re-created: a new ifindex, a new attachment.
			ns.Delete(t, "b0")
			ns.VethPair(t, "b0", "b1", "")
			if err := c.Sync([]vlantraffic.Port{port("b0")}, nil); err != nil {
				t.Fatal(err)
			}
			ns.Send(t, "b1", 2, netnstest.Frame(7, 60))
			waitForSamples(t, c, []vlantraffic.Sample{{Interface: "b0", VLAN: "other", Counts: vlantraffic.Counts{RxPackets: 2, RxBytes: 120}}})
			c.Close()
			if b := attachedPrograms(t, ns, hook, "b0"); b != 0 {
				t.Errorf("b0 still has %d programs after Close", b)
			}
		})
	}
}

// TestSyncReportsPortsThatCannotBeAttached: a failed attach names its port
// and leaves nothing counting.
func TestSyncReportsPortsThatCannotBeAttached(t *testing.T) {
	ns := netnstest.New(t)
	c := newCounter(t, ns)
	err := c.Sync([]vlantraffic.Port{{Name: "ghost0", Index: 99999}}, nil)
	if err == nil {
		t.Fatal("Sync on a missing ifindex: no error")
	}
	if want := "port ghost0: "; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Errorf("error %q does not name the port first", err)
	}
	if c.Samples() != nil {
		t.Errorf("samples from a port that never attached: %+v", c.Samples())
	}
}
