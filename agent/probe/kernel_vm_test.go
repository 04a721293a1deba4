//go:build integration && kernelvm

// Tests for link kinds the host kernel here lacks (802.1Q, bridge VLAN
// filtering, bonding, dummy, OVS). They run in a Debian kernel under qemu:
// make test-kernel.
package probe_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

func probeNS(t *testing.T, ns *netnstest.Namespace) probe.Snapshot {
	t.Helper()
	source, err := probe.NewNetlink(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(source.Close)
	links := probe.NewLinks(source, "")
	snap, err := links.ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	vlans, err := links.ProbeBridgeVLANs(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Skipped) != 0 {
		t.Errorf("links skipped: %+v", snap.Skipped)
	}
	return snap.WithVLANs(vlans)
}

func TestKernelVLANAndDummy(t *testing.T) {
	ns := netnstest.New(t)
	ns.Dummy(t, "uplink0")
	ns.VLAN(t, "uplink0.100", "uplink0", 100)
	snap := probeNS(t, ns)
	if d := snap.ByName("uplink0"); d == nil || d.Kind != "dummy" || !d.AdminUp {
		t.Errorf("dummy uplink0 = %+v", d)
	}
	status := capability.Build(capability.Input{Links: snap})
	want := []vmv1alpha1.VLANInterface{{Name: "uplink0.100", ID: 100, Parent: "uplink0", Up: true}}
	if !slices.Equal(status.VLANs, want) {
		t.Errorf("vlans = %+v, want %+v", status.VLANs, want)
	}
}

func TestKernelBridgeVLANFiltering(t *testing.T) {
	ns := netnstest.New(t)
	ns.FilteringBridge(t, "br-trunk")
	ns.Dummy(t, "trunk0")
	ns.Enslave(t, "trunk0", "br-trunk")
	ns.AllowVLANs(t, "trunk0", 100, 200, 201, 202)
	ns.Dummy(t, "plain0")
	ns.Enslave(t, "plain0", "br-trunk")

	status := capability.Build(capability.Input{Links: probeNS(t, ns)})
	if len(status.Bridges) != 1 {
		t.Fatalf("bridges = %+v", status.Bridges)
	}
	br := status.Bridges[0]
	if !br.VLANFiltering {
		t.Errorf("br-trunk: vlanFiltering false")
	}
	ports := map[string]vmv1alpha1.BridgePort{}
	for _, p := range br.Ports {
		ports[p.Name] = p
	}
	// The kernel gives every new port the default PVID 1, untagged.
	if p := ports["trunk0"]; p.VLANs != "1,100,200-202" || p.PVID != 1 {
		t.Errorf("trunk0 = %+v, want vlans 1,100,200-202 pvid 1", p)
	}
	if p := ports["plain0"]; p.VLANs != "1" || p.PVID != 1 {
		t.Errorf("plain0 = %+v, want vlans 1 pvid 1", p)
	}
	ok, err := vmv1alpha1.VLANsContain(ports["trunk0"].VLANs, 201)
	if !ok || err != nil {
		t.Errorf("VLAN 201 not found on trunk0 (%v)", err)
	}
}

func TestKernelBond(t *testing.T) {
	ns := netnstest.New(t)
	ns.Dummy(t, "eth0")
	ns.Dummy(t, "eth1")
	ns.ActiveBackupBond(t, "bond0", "eth0", "eth1")
	var bond vmv1alpha1.BondStatus
	deadline := time.Now().Add(5 * time.Second)
	for { // the active member is chosen by the MII monitor, within a few ticks
		status := capability.Build(capability.Input{Links: probeNS(t, ns)})
		if len(status.Bonds) == 1 {
			bond = status.Bonds[0]
		}
		if bond.ActiveMember != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if bond.Name != "bond0" || bond.Mode != "active-backup" || !slices.Equal(bond.Members, []string{"eth0", "eth1"}) {
		t.Errorf("bond = %+v", bond)
	}
	if bond.ActiveMember != "eth0" && bond.ActiveMember != "eth1" {
		t.Errorf("active member = %q, want eth0 or eth1", bond.ActiveMember)
	}
	status := capability.Build(capability.Input{Links: probeNS(t, ns)})
	if !slices.ContainsFunc(status.Uplinks, func(u vmv1alpha1.UplinkStatus) bool { return u.Name == "bond0" }) {
		t.Errorf("bond0 not among uplinks: %+v", status.Uplinks)
	}
}

func TestKernelOVSDatapath(t *testing.T) {
	ns := netnstest.New(t)
	ns.OVSDatapath(t, "br-ovs")
	snap := probeNS(t, ns)
	if l := snap.ByName("br-ovs"); l == nil || l.Kind != probe.KindOVS {
		t.Fatalf("br-ovs = %+v, want a link of kind %s", l, probe.KindOVS)
	}
	status := capability.Build(capability.Input{Links: snap})
	want := []vmv1alpha1.OVSBridgeStatus{{Name: "br-ovs", Up: true}}
	if !slices.Equal(status.OVSBridges, want) {
		t.Errorf("ovsBridges = %+v, want %+v", status.OVSBridges, want)
	}
}

// TestKernelSRIOVBesideBondingMasters: this VM loads the bonding module, so
// the kernel itself puts the regular file bonding_masters in /sys/class/net.
// The SR-IOV probe must pass over it (the VM has no SR-IOV NIC: no PFs).
func TestKernelSRIOVBesideBondingMasters(t *testing.T) {
	info, err := os.Stat("/sys/class/net/bonding_masters")
	if err != nil || !info.Mode().IsRegular() {
		t.Fatalf("bonding_masters: %v (mode %v); the kernel VM loads bonding, so it must be a regular file", err, info)
	}
	got, err := probe.NewSRIOV("/sys").ProbeSRIOV()
	if err != nil {
		t.Fatalf("SR-IOV probe beside bonding_masters: %v", err)
	}
	if len(got.PFs) != 0 || len(got.Skipped) != 0 {
		t.Errorf("PFs = %+v, skipped = %+v; want neither in this VM", got.PFs, got.Skipped)
	}
}
