//go:build integration && kernelvm

// Runs in Debian's stock kernel under qemu (make test-kernel), for the NADs
// whose plugin needs what the host kernel lacks: bridge VLAN filtering and
// 802.1Q links. The plugins come from the initramfs ($VMOP_CNI_BIN).
package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestKernelBridgeNADWithVLAN: the bridge plugin runs the operator's NAD
// for VLAN 100 on the admin's VLAN-filtering bridge br-mgmt (trunk eth1
// carrying 1,100,200): the pod's veth lands on br-mgmt with VLAN 100 as its
// PVID, untagged, and nothing else; ADD, CHECK and DEL all pass.
func TestKernelBridgeNADWithVLAN(t *testing.T) {
	binDir, err := consumers.CNIBinDir()
	if err != nil {
		t.Fatal(err)
	}
	config, err := desired.CNIConfig("mgmt", desired.Attachment{Network: &vmv1alpha1.NetworkConfig{Name: "mgmt"},
		Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-mgmt", VLAN: 100, MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	node, pod := netnstest.New(t), netnstest.New(t)
	node.FilteringBridge(t, "br-mgmt")
	node.VethPair(t, "eth1", "eth1-wire", "br-mgmt")
	node.AllowVLANs(t, "eth1", 100, 200)
	delegate := consumers.Delegate{BinDir: binDir, Node: node.Do, PodNetNS: pod.Path(), PodNamespace: "ns", PodName: "virt-launcher-vm-a"}
	err = delegate.AddCheckDel(context.Background(), []byte(config), "net1", "", func(types.Result) error {
		return podPortVLANs(node, pod, "br-mgmt", 100, 1400)
	})
	if err != nil {
		t.Fatalf("%v\nconfig: %s", err, config)
	}
}

// podPortVLANs checks the pod's veth on bridge (the one new port, and
// net1's mtu) and that it carries only vlan, as PVID and untagged.
func podPortVLANs(node, pod *netnstest.Namespace, bridge string, vlan, mtu int) error {
	if err := consumers.InspectBridgePort(node, pod, bridge, "eth1", mtu); err != nil {
		return err
	}
	ports, err := consumers.BridgePorts(node, bridge, "eth1")
	if err != nil {
		return err
	}
	vlans, err := node.Handle.BridgeVlanList()
	if err != nil {
		return err
	}
	entries := vlans[int32(ports[0].Attrs().Index)]
	want := nl.BRIDGE_VLAN_INFO_PVID | nl.BRIDGE_VLAN_INFO_UNTAGGED
	if len(entries) != 1 || int(entries[0].Vid) != vlan || entries[0].Flags != uint16(want) {
		return fmt.Errorf("port %s VLANs %v, want only %d as PVID, untagged", ports[0].Attrs().Name, entries, vlan)
	}
	return nil
}

// TestKernelMacvlanNADOnAVLANMaster: the operator's NAD for a macvlan
// network on VLAN 310 names the VLAN link storage.310 as master; the
// plugin puts the pod's net1 on it, in bridge mode, with the MAC KubeVirt
// asks for.
func TestKernelMacvlanNADOnAVLANMaster(t *testing.T) {
	binDir, err := consumers.CNIBinDir()
	if err != nil {
		t.Fatal(err)
	}
	config, err := desired.CNIConfig("storage", desired.Attachment{Network: &vmv1alpha1.NetworkConfig{Name: "storage"},
		Type: vmv1alpha1.NetworkTypeMacvlan, Master: "storage.310", VLAN: 310})
	if err != nil {
		t.Fatal(err)
	}
	node, pod := netnstest.New(t), netnstest.New(t)
	node.VethPair(t, "storage", "storage-wire", "")
	node.VLAN(t, "storage.310", "storage", 310)
	const mac = "02:00:00:00:31:00"
	delegate := consumers.Delegate{BinDir: binDir, Node: node.Do, PodNetNS: pod.Path(), PodNamespace: "ns", PodName: "virt-launcher-vm-b"}
	err = delegate.AddCheckDel(context.Background(), []byte(config), "net1", mac, func(types.Result) error {
		link, err := pod.Handle.LinkByName("net1")
		if err != nil {
			return err
		}
		master, err := node.Handle.LinkByName("storage.310")
		if err != nil {
			return err
		}
		macvlan, ok := link.(*netlink.Macvlan)
		if !ok || macvlan.ParentIndex != master.Attrs().Index || macvlan.HardwareAddr.String() != mac {
			return fmt.Errorf("net1 = %s parent %d MAC %s; want a macvlan on storage.310 (%d) with %s", link.Type(), link.Attrs().ParentIndex, link.Attrs().HardwareAddr, master.Attrs().Index, mac)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\nconfig: %s", err, config)
	}
}

// arrivals sends frame count times from the pod's net1 and counts, on each
// watched switch link, the test frames from the frame's source MAC that
// arrive. Counting test frames by source, not a link's packet counter,
// keeps the count exact when anything else (a late frame of an earlier
// burst, the kernel's own traffic) crosses the link.
func arrivals(t *testing.T, pod, sw *netnstest.Namespace, frame []byte, count int, watched ...string) map[string]uint64 {
	t.Helper()
	captures := map[string]*netnstest.Capture{}
	for _, name := range watched {
		captures[name] = sw.Capture(t, name)
	}
	pod.Send(t, "net1", count, frame)
	src := net.HardwareAddr(frame[6:12]).String()
	got := map[string]uint64{}
	for _, name := range watched {
		got[name] = uint64(captures[name].From(src, 300*time.Millisecond))
	}
	return got
}

// wire gives the node an uplink whose far end is in the switch namespace,
// with a VLAN link there for each id to count what arrives on that VLAN.
func wire(t *testing.T, node, sw *netnstest.Namespace, uplink, master string, vlans ...int) {
	t.Helper()
	node.VethPair(t, uplink, uplink+"-wire", master)
	node.MoveTo(t, uplink+"-wire", sw)
	sw.SetUp(t, uplink+"-wire")
	for _, id := range vlans {
		sw.VLAN(t, fmt.Sprintf("w.%d", id), uplink+"-wire", id)
	}
}

// confinementCase is one kind of frame the guest sends, and how many of
// them each switch link may see.
type confinementCase struct {
	what  string
	vid   int
	wants map[string]uint64
}

func checkConfinement(t *testing.T, pod, sw *netnstest.Namespace, src string, cases []confinementCase) error {
	t.Helper()
	mac, err := net.ParseMAC(src)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cases {
		watched := make([]string, 0, len(c.wants))
		for name := range c.wants {
			watched = append(watched, name)
		}
		sort.Strings(watched)
		got := arrivals(t, pod, sw, netnstest.FrameFrom(mac, c.vid, 64), sent, watched...)
		for _, name := range watched {
			if got[name] != c.wants[name] {
				errs = append(errs, fmt.Errorf("%s: %s received %d of %d frames, want %d", c.what, name, got[name], sent, c.wants[name]))
			}
		}
	}
	return errors.Join(errs...)
}

// sent is how many frames each case sends.
const sent = 20

// TestKernelBridgeNADConfinesTheVMToItsVLAN: a VM on VLAN 100 of a
// VLAN-filtering bridge whose uplink trunks 100 and 200 (the HostNetwork's
// allowedVLANs) gets its untagged frames onto VLAN 100 (the positive
// control), and not one frame it tags itself leaves the node: not on VLAN
// 300 (outside the allowed list), not on 200 (allowed, another tenant's),
// not on VLAN 1 (where untagged VMs live; preserveDefaultVlan is false).
// The same NAD on a bridge without vlan_filtering lets the guest's VLAN
// 300 frames straight onto the trunk, which is why placement requires
// vlan_filtering of an unmanaged bridge with allowedVLANs.
func TestKernelBridgeNADConfinesTheVMToItsVLAN(t *testing.T) {
	binDir, err := consumers.CNIBinDir()
	if err != nil {
		t.Fatal(err)
	}
	config, err := desired.CNIConfig("trunk", desired.Attachment{Network: &vmv1alpha1.NetworkConfig{Name: "trunk"},
		Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-trunk", VLAN: 100})
	if err != nil {
		t.Fatal(err)
	}
	const vmMAC = "02:00:00:00:01:00"
	none := func(names ...string) map[string]uint64 {
		m := map[string]uint64{}
		for _, n := range names {
			m[n] = 0
		}
		return m
	}
	all := []string{"eth1-wire", "w.1", "w.100", "w.200", "w.300"}
	for _, filtering := range []bool{true, false} {
		t.Run(fmt.Sprintf("vlan_filtering=%t", filtering), func(t *testing.T) {
			node, pod, sw := netnstest.New(t), netnstest.New(t), netnstest.New(t)
			for _, ns := range []*netnstest.Namespace{node, pod, sw} {
				ns.NoIPv6(t)
			}
			if filtering {
				node.FilteringBridge(t, "br-trunk")
			} else {
				node.Bridge(t, "br-trunk")
			}
			wire(t, node, sw, "eth1", "br-trunk", 1, 100, 200, 300)
			node.AllowVLANs(t, "eth1", 100, 200)
			var cases []confinementCase
			if filtering {
				positive := none(all...)
				positive["eth1-wire"], positive["w.100"] = sent, sent
				cases = []confinementCase{
					{"untagged, onto its VLAN 100 (positive control)", 0, positive},
					{"tagged 300, outside allowedVLANs", 300, none(all...)},
					{"tagged 200, allowed but not the VM's", 200, none(all...)},
					{"tagged 1, the default VLAN", 1, none(all...)},
				}
			} else {
				leak := none(all...)
				leak["eth1-wire"], leak["w.300"] = sent, sent
				cases = []confinementCase{{"tagged 300 on a bridge that does not filter", 300, leak}}
			}
			delegate := consumers.Delegate{BinDir: binDir, Node: node.Do, PodNetNS: pod.Path(), PodNamespace: "ns", PodName: "virt-launcher-vm-v"}
			err := delegate.AddCheckDel(context.Background(), []byte(config), "net1", vmMAC, func(types.Result) error {
				return checkConfinement(t, pod, sw, vmMAC, cases)
			})
			if err != nil {
				t.Fatalf("%v\nconfig: %s", err, config)
			}
		})
	}
}

// TestKernelMacvlanNADKeepsGuestTagsInsideItsVLAN: a macvlan network on
// VLAN 310 attaches over the sub-interface storage.310, so whatever the
// guest tags stays inside VLAN 310: its untagged frames arrive on 310 (the
// positive control), and its frames tagged 311 (outside allowedVLANs)
// arrive on 310 too, with their tag inside, and not one on 311. On the raw
// uplink, the untagged attachment the operator now refuses where
// allowedVLANs are set, the same frames land on VLAN 311.
func TestKernelMacvlanNADKeepsGuestTagsInsideItsVLAN(t *testing.T) {
	binDir, err := consumers.CNIBinDir()
	if err != nil {
		t.Fatal(err)
	}
	const vmMAC = "02:00:00:00:03:10"
	for _, c := range []struct {
		name, master string
		vlan         int32
		cases        []confinementCase
	}{
		{"over storage.310", "storage.310", 310, []confinementCase{
			{"untagged, onto VLAN 310 (positive control)", 0, map[string]uint64{"w.310": sent, "w.311": 0}},
			{"tagged 311, outside allowedVLANs", 311, map[string]uint64{"w.310": sent, "w.311": 0}},
		}},
		{"on the raw uplink (refused where allowedVLANs are set)", "storage", 0, []confinementCase{
			{"tagged 311 from an untagged attachment", 311, map[string]uint64{"w.310": 0, "w.311": sent}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			config, err := desired.CNIConfig("storage", desired.Attachment{Network: &vmv1alpha1.NetworkConfig{Name: "storage"},
				Type: vmv1alpha1.NetworkTypeMacvlan, Master: c.master, VLAN: c.vlan})
			if err != nil {
				t.Fatal(err)
			}
			node, pod, sw := netnstest.New(t), netnstest.New(t), netnstest.New(t)
			for _, ns := range []*netnstest.Namespace{node, pod, sw} {
				ns.NoIPv6(t)
			}
			wire(t, node, sw, "storage", "", 310, 311)
			node.VLAN(t, "storage.310", "storage", 310)
			delegate := consumers.Delegate{BinDir: binDir, Node: node.Do, PodNetNS: pod.Path(), PodNamespace: "ns", PodName: "virt-launcher-vm-w"}
			err = delegate.AddCheckDel(context.Background(), []byte(config), "net1", vmMAC, func(types.Result) error {
				return checkConfinement(t, pod, sw, vmMAC, c.cases)
			})
			if err != nil {
				t.Fatalf("%v\nconfig: %s", err, config)
			}
		})
	}
}
