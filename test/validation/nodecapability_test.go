package validation

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// capabilityOf is a small status such as an agent writes.
func capabilityOf() vmv1alpha1.NodeCapabilityStatus {
	return vmv1alpha1.NodeCapabilityStatus{
		KVM:     &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12, Vendor: "intel"},
		Bridges: []vmv1alpha1.BridgeStatus{{Name: "br-mgmt", Up: true, Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true}}}},
		Uplinks: []vmv1alpha1.UplinkStatus{{Name: "eth1", Up: true, Carrier: true}},
	}
}

// TestNodeCapabilityRefusesAMegabyteString: the apiserver refuses a
// NodeCapability status with a megabyte in a string an agent writes
// (kvm.reason, a port's VLAN list, a policy's message) or an interface
// name longer than the kernel allows, naming the field; it accepts every
// string at its bound, the longest possible VLAN list included.
func TestNodeCapabilityRefusesAMegabyteString(t *testing.T) {
	ctx := context.Background()
	capability := &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "huge-a"}}
	if err := cluster.Client.Create(ctx, capability); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), capability) })
	write := func(status vmv1alpha1.NodeCapabilityStatus) error {
		capability.Status = status
		return cluster.Client.Status().Update(ctx, capability)
	}
	if err := write(capabilityOf()); err != nil {
		t.Fatalf("an ordinary status refused: %v", err)
	}

	megabyte := strings.Repeat("x", 1<<20)
	refused := map[string]func(*vmv1alpha1.NodeCapabilityStatus){
		"status.kvm.reason": func(c *vmv1alpha1.NodeCapabilityStatus) { c.KVM = &vmv1alpha1.KVMStatus{Reason: megabyte} },
		"status.bridges[0].ports[0].vlans": func(c *vmv1alpha1.NodeCapabilityStatus) {
			c.Bridges[0].VLANFiltering, c.Bridges[0].Ports[0].VLANs = true, megabyte
		},
		"status.policies[0].message": func(c *vmv1alpha1.NodeCapabilityStatus) {
			c.Policies = []vmv1alpha1.PolicyVerification{{Name: "p", Message: megabyte}}
		},
		"status.bridges[0].name": func(c *vmv1alpha1.NodeCapabilityStatus) { c.Bridges[0].Name = "br-sixteen-chars" },
	}
	for field, change := range refused {
		status := capabilityOf()
		change(&status)
		err := write(status)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: written with %v, want Invalid naming the field", field, err)
			continue
		}
		t.Logf("%s refused: %.150s", field, err)
	}

	var pairs []int
	for id := 0; id <= 4095; id += 3 {
		pairs = append(pairs, id, id+1)
	}
	atBound := capabilityOf()
	atBound.KVM = &vmv1alpha1.KVMStatus{Reason: strings.Repeat("ö", vmv1alpha1.MaxAgentMessageLength)}
	atBound.Bridges[0].VLANFiltering, atBound.Bridges[0].Ports[0].VLANs = true, vmv1alpha1.FormatVLANs(pairs)
	atBound.Bridges[0].Name = strings.Repeat("b", vmv1alpha1.MaxInterfaceNameLength)
	atBound.Policies = []vmv1alpha1.PolicyVerification{{Name: strings.Repeat("p", 253),
		Kernel: strings.Repeat("k", vmv1alpha1.MaxAgentMessageLength), Message: strings.Repeat("m", vmv1alpha1.MaxAgentMessageLength)}}
	if err := write(atBound); err != nil {
		t.Fatalf("strings at their bounds (a %d-character VLAN list) refused: %v", len(atBound.Bridges[0].Ports[0].VLANs), err)
	}
}
