package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestDHCPAddressTakesTheSubnetPrefix: KubeVirt reports a guest's DHCP
// address without its prefix (the simulator's guest leases one in
// 198.18.0.0/15); with HostNetwork lan declaring that subnet for the
// test, the profile's status shows it as 198.18.x.y/15, and
// status.addresses, the -o wide column, carries the same.
func TestDHCPAddressTakesTheSubnetPrefix(t *testing.T) {
	ctx := context.Background()
	setSubnets := func(subnets []vmv1alpha1.Subnet) {
		t.Helper()
		lan := getHostNetwork(t, "lan")
		patch := client.MergeFrom(lan.DeepCopy())
		lan.Spec.Subnets = subnets
		if err := cluster.Client.Patch(ctx, lan, patch); err != nil {
			t.Fatalf("set HostNetwork lan's subnets: %v", err)
		}
	}
	setSubnets([]vmv1alpha1.Subnet{{CIDR: "198.18.0.0/15"}})
	t.Cleanup(func() { setSubnets(nil) })
	ns := newNamespace(t)
	create(t, profile("dhcp", ns, func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].BridgeName = "br-lan" }))
	waitForPhase(t, ns, "dhcp", vmv1alpha1.PhaseRunning)
	observe.Eventually(t, 30*time.Second, "the DHCP address with its prefix", func() (bool, string) {
		p := getProfile(t, ns, "dhcp")
		if len(p.Status.Networks) != 1 {
			return false, observe.Describe(p)
		}
		lan := p.Status.Networks[0]
		ok := strings.HasPrefix(lan.IPAddress, "198.18.") && strings.HasSuffix(lan.IPAddress, "/15") &&
			lan.IPSource == vmv1alpha1.IPSourceGuest && p.Status.Addresses == lan.IPAddress
		return ok, "networks " + lan.IPAddress + " (" + string(lan.IPSource) + "), addresses " + p.Status.Addresses
	})
}
