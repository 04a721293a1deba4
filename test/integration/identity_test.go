package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestIdentitySubnetsRefuseAddresses: on a HostNetwork declaring a subnet
// with a gateway and reserved ranges, a static address on the gateway, in
// a reserved range or outside the subnet is refused with a message naming
// the profile field, and no VM is made; an address inside is admitted. The
// apiserver refuses a subnet with host bits set, naming the field.
func TestIdentitySubnetsRefuseAddresses(t *testing.T) {
	spec := vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-sub", NamespaceSelector: metav1.LabelSelector{},
		Subnets: []vmv1alpha1.Subnet{{CIDR: "192.168.100.0/24", Gateway: ptr.To[vmv1alpha1.IPAddress]("192.168.100.1"),
			Reserved: []vmv1alpha1.AddressRange{"192.168.100.1-192.168.100.9", "192.168.100.200/29"}}}}
	bad := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "sub-bad"}, Spec: *spec.DeepCopy()}
	bad.Spec.BridgeName = "br-sub-bad"
	bad.Spec.Subnets[0].CIDR = "192.168.100.7/24"
	if err := cluster.Client.Create(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "spec.subnets[0].cidr") {
		t.Fatalf("a subnet with host bits set: %v", err)
	}
	declare(t, "sub", spec)
	ns := newNamespace(t)
	onSub := func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].BridgeName = "br-sub" }
	for _, c := range []struct {
		name, address, want string
	}{
		{"gateway", "192.168.100.1/24", "static address 192.168.100.1 is the gateway of subnet 192.168.100.0/24 on HostNetwork sub"},
		{"reserved", "192.168.100.5/24", "static address 192.168.100.5 is reserved in subnet 192.168.100.0/24 (192.168.100.1-192.168.100.9)"},
		{"reserved-cidr", "192.168.100.203/24", "(192.168.100.200/29)"},
		{"outside", "192.168.101.10/24", "static address 192.168.101.10 is outside the declared subnets (192.168.100.0/24)"},
	} {
		create(t, profile(c.name, ns, onSub, withStaticIP(c.address)))
		p := waitForCondition(t, ns, c.name, vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonStaticIPNotAllowed)
		expectEvent(t, ns, c.name, vmv1alpha1.ReasonStaticIPNotAllowed)
		message := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured)
		if !strings.Contains(message, "spec.networks[0].ipConfig.address") || !strings.Contains(message, c.want) {
			t.Fatalf("%s: message %q, want the field and %q", c.name, message, c.want)
		}
		if p.Status.Phase != vmv1alpha1.PhaseError {
			t.Fatalf("%s: %s", c.name, observe.Describe(p))
		}
	}
	create(t, profile("inside", ns, onSub, withStaticIP("192.168.100.10/24")))
	observe.Eventually(t, 30*time.Second, "inside admitted", func() (bool, string) {
		p := getProfile(t, ns, "inside")
		return meta.IsStatusConditionTrue(p.Status.Conditions, vmv1alpha1.ConditionNetworksConfigured), observe.Describe(p)
	})
}

// TestIdentityRunningHolderKeepsItsAddress: an older profile edited onto the
// address a younger profile's VM runs with is refused, naming the running
// holder (same namespace); the running one stays Running with its networks
// configured.
func TestIdentityRunningHolderKeepsItsAddress(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("old", ns, withStaticIP("10.91.0.4/24")))
	waitForPhase(t, ns, "old", vmv1alpha1.PhaseRunning)
	time.Sleep(1100 * time.Millisecond) // a clearly younger profile
	create(t, profile("young", ns, withStaticIP("10.91.0.5/24")))
	waitForPhase(t, ns, "young", vmv1alpha1.PhaseRunning)

	old := getProfile(t, ns, "old")
	old.Spec.Networks[0].IPConfig.Address = ptr.To("10.91.0.5/24")
	if err := cluster.Client.Update(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	p := waitForCondition(t, ns, "old", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonStaticIPConflict)
	if message := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured); message != "static address 10.91.0.5 is already used on the same network by the running profile young" {
		t.Fatalf("old's message: %q", message)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		young := getProfile(t, ns, "young")
		if young.Status.Phase != vmv1alpha1.PhaseRunning || !meta.IsStatusConditionTrue(young.Status.Conditions, vmv1alpha1.ConditionNetworksConfigured) {
			t.Fatalf("the running holder lost its address: %s", observe.Describe(young))
		}
	}
}

// TestIdentityMACClashAcrossNamespaces: a profile taking the MAC another
// namespace's running profile uses on the same network is refused with
// MACConflict, and the message names neither that profile nor its
// namespace; the holder keeps running, and the refused one proceeds once
// the holder is deleted.
func TestIdentityMACClashAcrossNamespaces(t *testing.T) {
	nsA, nsB := newNamespace(t), newNamespace(t)
	withMAC := func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].MACAddress = "02:00:00:91:00:01" }
	create(t, profile("holder", nsA, withMAC))
	waitForPhase(t, nsA, "holder", vmv1alpha1.PhaseRunning)
	create(t, profile("taker", nsB, func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].MACAddress = "02:00:00:91:00:01" }))
	p := waitForCondition(t, nsB, "taker", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonMACConflict)
	expectEvent(t, nsB, "taker", vmv1alpha1.ReasonMACConflict)
	message := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured)
	if message != "MAC address 02:00:00:91:00:01 is already used on the same network by an older profile in another namespace" ||
		strings.Contains(message, nsA) || strings.Contains(message, "holder") {
		t.Fatalf("taker's message: %q", message)
	}
	if h := getProfile(t, nsA, "holder"); h.Status.Phase != vmv1alpha1.PhaseRunning {
		t.Fatalf("holder: %s", observe.Describe(h))
	}
	if err := cluster.Client.Delete(context.Background(), getProfile(t, nsA, "holder")); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, nsB, "taker", vmv1alpha1.PhaseRunning)
}
