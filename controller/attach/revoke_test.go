package attach

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestRulesRevokeAndHeldResolves: a namespace, VLAN or MTU a HostNetwork's
// rule excludes is a revocation whose restore hint names the HostNetwork
// and the field; a HostNetwork not found is not (it may be a cache not
// synced yet). Held resolution ignores the rules and lands on the segment
// the network was admitted to.
func TestRulesRevokeAndHeldResolves(t *testing.T) {
	cases := []struct {
		name      string
		namespace string
		network   vmv1alpha1.NetworkConfig
		reason    string
		restore   string
		segment   string
	}{
		{"namespace", "tenant-b", vmv1alpha1.NetworkConfig{Name: "n", Type: "macvlan", VLANID: ptr.To[int32](310)},
			vmv1alpha1.ReasonNamespaceNotAllowed, "HostNetwork storage's spec.namespaceSelector selects namespace tenant-b again", "hostnetwork/storage/310"},
		{"VLAN", "tenant-a", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-mgmt", VLANID: ptr.To[int32](150)},
			vmv1alpha1.ReasonVLANNotAllowed, "HostNetwork mgmt's spec.allowedVLANs includes VLAN 150 again", "hostnetwork/mgmt/150"},
		{"MTU", "tenant-a", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-mgmt", MTU: ptr.To[int32](9216)},
			vmv1alpha1.ReasonMTUTooLarge, "HostNetwork mgmt's spec.mtu is 9216 or more again", "hostnetwork/mgmt/0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": c.namespace}}
			_, refusal := Resolve(profileWith(c.namespace, c.network), in)
			if refusal == nil || refusal.Reason != c.reason || !refusal.Revokes || !strings.Contains(refusal.Restore, c.restore) {
				t.Fatalf("want a revocation %s restored when %q, got %+v", c.reason, c.restore, refusal)
			}
			in.Held = true
			attachments, refusal := Resolve(profileWith(c.namespace, c.network), in)
			if refusal != nil || attachments[0].Segment != c.segment {
				t.Fatalf("held: %+v %+v, want segment %s", refusal, attachments, c.segment)
			}
		})
	}
	in := Inputs{HostNetworks: declaredNetworks()}
	_, refusal := Resolve(profileWith("ns", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", HostNetwork: "gone"}), in)
	if refusal == nil || refusal.Revokes {
		t.Fatalf("a HostNetwork not found is no revocation: %+v", refusal)
	}
}
