//go:build integration && kernelvm

// Runs in Debian's stock kernel under qemu (make test-kernel), for the NADs
// whose plugin needs what the host kernel lacks: bridge VLAN filtering and
// 802.1Q links. The plugins come from the initramfs ($VMOP_CNI_BIN).
package consumers_test

import (
	"context"
	"fmt"
	"testing"

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
