//go:build integration

package desired

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestBridgeNADDropsFramesNotFromTheVMsMAC: the operator's bridge NAD,
// run by the real bridge plugin (macspoofchk, through nft) and wired as
// KubeVirt's bridge binding wires it, lets the guest's frames from its own
// MAC out of the uplink and drops every frame from any other source MAC,
// so a guest cannot pose as another host on the segment. The host kernel
// has no VLAN filtering; the VLAN side runs in the kernel VM
// (internal/testing/consumers, TestKernelBridgeNADConfinesTheVMToItsVLAN).
func TestBridgeNADDropsFramesNotFromTheVMsMAC(t *testing.T) {
	binDir, err := consumers.CNIBinDir()
	if err != nil {
		t.Fatal(err)
	}
	const vmMAC = "02:a1:b2:c3:d4:e6"
	config, err := CNIConfig("lan-nad", Attachment{Network: &vmv1alpha1.NetworkConfig{Name: "lan"}, Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-lan"})
	if err != nil {
		t.Fatal(err)
	}
	node, pod, guest := netnstest.New(t), netnstest.New(t), netnstest.New(t)
	for _, ns := range []*netnstest.Namespace{node, pod, guest} {
		ns.NoIPv6(t)
	}
	node.Bridge(t, "br-lan")
	node.VethPair(t, "eth1", "eth1-wire", "br-lan")
	delegate := consumers.Delegate{BinDir: binDir, Node: node.Do, PodNetNS: pod.Path(), PodNamespace: "ns", PodName: "virt-launcher-vm-s"}
	err = delegate.AddCheckDel(context.Background(), []byte(config), "net1", vmMAC, func(types.Result) error {
		if err := bridgeBinding(pod, guest, vmMAC); err != nil {
			return err
		}
		const sent = 20
		uplink := node.Capture(t, "eth1-wire")
		var errs []error
		for _, c := range []struct {
			what string
			src  string
			want int
		}{
			{"from the VM's own MAC (positive control)", vmMAC, sent},
			{"from a spoofed MAC", "02:00:00:00:00:99", 0},
		} {
			guest.Send(t, "eth0", sent, netnstest.FrameFrom(mustMAC(c.src), 0, 64))
			if got := uplink.From(c.src, 300*time.Millisecond); got != c.want {
				errs = append(errs, fmt.Errorf("%s: the uplink got %d of %d frames, want %d", c.what, got, sent, c.want))
			}
		}
		errs = append(errs, unbind(pod, vmMAC))
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("%v\nconfig: %s", err, config)
	}
}
