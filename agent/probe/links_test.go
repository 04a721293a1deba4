//go:build integration

package probe

import (
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// linkProbe probes ns through sockets opened in it, closed when the test ends.
func linkProbe(t *testing.T, ns *netnstest.Namespace) *Links {
	t.Helper()
	source, err := NewNetlink(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(source.Close)
	return NewLinks(source, "")
}

func TestLinksBridgeVethMacvlan(t *testing.T) {
	ns := netnstest.New(t)
	ns.Bridge(t, "br-mgmt")
	ns.VethPair(t, "mgmt-p0", "mgmt-q0", "br-mgmt")
	ns.VethPair(t, "mgmt-p1", "mgmt-q1", "br-mgmt")
	ns.VethPair(t, "uplink0", "uplink0-peer", "")
	ns.Macvlan(t, "mv0", "uplink0")
	ns.SetDown(t, "mgmt-q1") // p1 keeps admin up but loses carrier
	ns.WaitOperState(t, "mgmt-p1", netlink.OperLowerLayerDown)
	// Carrier coming up takes the same linkwatch path: a loaded machine
	// probed mgmt-p0 and br-mgmt before it had run.
	ns.WaitOperState(t, "mgmt-p0", netlink.OperUp)
	ns.WaitOperState(t, "br-mgmt", netlink.OperUp)

	snap, err := linkProbe(t, ns).ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                 string
		kind, master, parent string
		adminUp, carrier     bool
	}{
		{name: "br-mgmt", kind: KindBridge, adminUp: true, carrier: true},
		{name: "mgmt-p0", kind: KindVeth, master: "br-mgmt", adminUp: true, carrier: true},
		{name: "mgmt-p1", kind: KindVeth, master: "br-mgmt", adminUp: true, carrier: false},
		{name: "mgmt-q1", kind: KindVeth, adminUp: false, carrier: false},
		{name: "uplink0", kind: KindVeth, adminUp: true, carrier: true},
		{name: "mv0", kind: KindMacvlan, parent: "uplink0", adminUp: true, carrier: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := snap.ByName(tc.name)
			if l == nil {
				t.Fatalf("link %s missing from %+v", tc.name, snap.Links)
			}
			if l.Kind != tc.kind || l.Master != tc.master || l.Parent != tc.parent || l.AdminUp != tc.adminUp || l.Carrier != tc.carrier {
				t.Errorf("got kind=%s master=%q parent=%q up=%v carrier=%v, want kind=%s master=%q parent=%q up=%v carrier=%v",
					l.Kind, l.Master, l.Parent, l.AdminUp, l.Carrier, tc.kind, tc.master, tc.parent, tc.adminUp, tc.carrier)
			}
			if l.MTU != 1500 {
				t.Errorf("mtu = %d, want 1500", l.MTU)
			}
		})
	}
	if snap.ByName("br-mgmt").VLANFiltering {
		t.Errorf("br-mgmt reports vlan_filtering, which was never enabled")
	}
}

// TestLinksPeerElsewhere: the host end of a pod's veth, whose peer the CNI
// plugin moved into the pod's namespace, says so; a veth whose peer stays,
// as the tests' uplinks do, does not, nor does a macvlan on a local link;
// a tap is reported as one.
func TestLinksPeerElsewhere(t *testing.T) {
	host, pod := netnstest.New(t), netnstest.New(t)
	host.Bridge(t, "br-vm")
	host.VethPair(t, "vm-a", "eth0-a", "br-vm")
	host.MoveTo(t, "eth0-a", pod)
	host.VethPair(t, "uplink0", "uplink0-peer", "br-vm")
	host.Tap(t, "tap-b", "br-vm")
	host.Macvlan(t, "mv0", "uplink0-peer")

	snap, err := linkProbe(t, host).ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, kind, master, parent string
		elsewhere                  bool
	}{
		{name: "vm-a", kind: KindVeth, master: "br-vm", elsewhere: true},
		{name: "uplink0", kind: KindVeth, master: "br-vm"},
		{name: "uplink0-peer", kind: KindVeth},
		{name: "tap-b", kind: KindTuntap, master: "br-vm"},
		{name: "mv0", kind: KindMacvlan, parent: "uplink0-peer"},
	}
	for _, tc := range cases {
		l := snap.ByName(tc.name)
		if l == nil {
			t.Fatalf("link %s missing from %+v", tc.name, snap.Links)
		}
		if l.Kind != tc.kind || l.Master != tc.master || l.Parent != tc.parent || l.PeerElsewhere != tc.elsewhere {
			t.Errorf("%s: kind=%s master=%q parent=%q peer elsewhere=%v, want kind=%s master=%q parent=%q peer elsewhere=%v",
				tc.name, l.Kind, l.Master, l.Parent, l.PeerElsewhere, tc.kind, tc.master, tc.parent, tc.elsewhere)
		}
	}
	if snap.ByName("eth0-a") != nil {
		t.Error("eth0-a was moved out, yet the probe lists it")
	}
}

func TestLinksDownUp(t *testing.T) {
	ns := netnstest.New(t)
	ns.Bridge(t, "br0")
	ns.VethPair(t, "p0", "q0", "br0")
	probe := linkProbe(t, ns)
	steps := []struct {
		name        string
		act         func()
		wantAdminUp bool
		wantCarrier bool
	}{
		{name: "initially up", act: func() {}, wantAdminUp: true, wantCarrier: true},
		{name: "set down", act: func() { ns.SetDown(t, "p0") }, wantAdminUp: false, wantCarrier: false},
		{name: "peer down, port up", act: func() { ns.SetUp(t, "p0"); ns.SetDown(t, "q0") }, wantAdminUp: true, wantCarrier: false},
		{name: "both up again", act: func() { ns.SetUp(t, "q0") }, wantAdminUp: true, wantCarrier: true},
	}
	for _, step := range steps {
		step.act()
		// Carrier follows admin state asynchronously (linkwatch), within a second.
		var l *Link
		deadline := time.Now().Add(3 * time.Second)
		for {
			snap, err := probe.ProbeLinks()
			if err != nil {
				t.Fatal(err)
			}
			l = snap.ByName("p0")
			if l.AdminUp == step.wantAdminUp && l.Carrier == step.wantCarrier || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if l.AdminUp != step.wantAdminUp || l.Carrier != step.wantCarrier {
			t.Errorf("%s: up=%v carrier=%v, want up=%v carrier=%v", step.name, l.AdminUp, l.Carrier, step.wantAdminUp, step.wantCarrier)
		}
	}
}

// TestLinksStatistics sends real frames across a veth pair and checks the
// counters the probe reads move by at least that much.
func TestLinksStatistics(t *testing.T) {
	ns := netnstest.New(t)
	ns.VethPair(t, "s0", "s1", "")
	addr, err := netlink.ParseAddr("192.0.2.1/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.AddrAdd(ns.Link(t, "s0"), addr); err != nil {
		t.Fatal(err)
	}
	probe := linkProbe(t, ns)
	before, err := probe.ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	const frames = 5
	sendUDPInNamespace(t, ns, "192.0.2.99:9", frames) // unresolved neighbour → ARP requests go out s0
	after, err := probe.ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	tx0, tx1 := before.ByName("s0").Stats, after.ByName("s0").Stats
	rx1 := after.ByName("s1").Stats
	if tx1.TxPackets <= tx0.TxPackets || tx1.TxBytes <= tx0.TxBytes {
		t.Errorf("s0 tx did not move: before %+v after %+v", tx0, tx1)
	}
	if rx1.RxPackets == 0 || rx1.RxBytes == 0 {
		t.Errorf("s1 rx is zero after traffic: %+v", rx1)
	}
	t.Logf("s0 tx %d→%d packets, s1 rx %d packets", tx0.TxPackets, tx1.TxPackets, rx1.RxPackets)
}

func sendUDPInNamespace(t *testing.T, ns *netnstest.Namespace, to string, n int) {
	t.Helper()
	err := ns.Do(func() error {
		conn, err := net.Dial("udp4", to)
		if err != nil {
			return err
		}
		defer conn.Close()
		for range n {
			_, _ = conn.Write([]byte("vmop-probe-test")) // the first writes may fail while ARP resolves
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLinksCarrierChangesComeFromTheKernel flaps p0's carrier twice (its
// peer down and up) with no probe in between: the kernel's own counter
// says 4 transitions, which sampling carrier at each probe would miss.
func TestLinksCarrierChangesComeFromTheKernel(t *testing.T) {
	ns := netnstest.New(t)
	ns.VethPair(t, "p0", "q0", "")
	probe := linkProbe(t, ns)
	before, err := probe.ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ns.SetDown(t, "q0")
		ns.SetUp(t, "q0")
	}
	after, err := probe.ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	from, to := before.ByName("p0").Stats.CarrierChanges, after.ByName("p0").Stats.CarrierChanges
	if to-from != 4 {
		t.Errorf("p0 carrier changes %d→%d, want 4 more (two flaps of its peer)", from, to)
	}
	t.Logf("p0 carrier changes %d→%d", from, to)
}
