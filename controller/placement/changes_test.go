package placement

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func withCondition(conditionType string, status metav1.ConditionStatus, at time.Time) func(*vmv1alpha1.NodeCapabilityStatus) {
	return func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Conditions = append(c.Conditions, metav1.Condition{Type: conditionType, Status: status, Reason: "Probed", LastTransitionTime: metav1.NewTime(at)})
	}
}

// TestChangedRequirements: which requirement labels a capability change
// wakes the profiles of, for each kind of change.
func TestChangedRequirements(t *testing.T) {
	wanted := []Requirement{
		{Label: vmv1alpha1.LabelKVM, Kind: NeedKVM},
		{Label: BridgeLabel("br-mgmt"), Kind: NeedBridge, Name: "br-mgmt"},
		{Label: VLANLabel("br-mgmt", 100), Kind: NeedVLAN, Name: "br-mgmt", VLAN: 100},
		{Label: VLANLabel("br-mgmt", 200), Kind: NeedVLAN, Name: "br-mgmt", VLAN: 200},
		{Label: BridgeLabel("br-edge"), Kind: NeedBridge, Name: "br-edge"},
	}
	offers := []HostNetworkOffer{{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-mgmt"}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := capability(withBridge("br-mgmt", true, "eth1", "1,100"), withBridge("br-edge", true, "eth2", ""), withCondition("LinksProbed", metav1.ConditionTrue, t0))
	for _, tc := range []struct {
		name         string
		old, updated *vmv1alpha1.NodeCapabilityStatus
		want         []string
	}{
		{"nothing changed", base, base, nil},
		{"a condition's transition time alone", base,
			capability(withBridge("br-mgmt", true, "eth1", "1,100"), withBridge("br-edge", true, "eth2", ""), withCondition("LinksProbed", metav1.ConditionTrue, t0.Add(time.Hour))), nil},
		{"KVM lost", base,
			capability(withoutKVM("gone"), withBridge("br-mgmt", true, "eth1", "1,100"), withBridge("br-edge", true, "eth2", ""), withCondition("LinksProbed", metav1.ConditionTrue, t0)),
			[]string{vmv1alpha1.LabelKVM}},
		{"a VLAN added on the uplink wakes only that VLAN's profiles", base,
			capability(withBridge("br-mgmt", true, "eth1", "1,100,200"), withBridge("br-edge", true, "eth2", ""), withCondition("LinksProbed", metav1.ConditionTrue, t0)),
			[]string{VLANLabel("br-mgmt", 200)}},
		// Profiles on one of its VLANs need the bridge too: they wake by its label.
		{"a bridge going down wakes the bridge and its host networks", base,
			capability(withBridge("br-mgmt", false, "eth1", "1,100"), withBridge("br-edge", true, "eth2", ""), withCondition("LinksProbed", metav1.ConditionTrue, t0)),
			[]string{BridgeLabel("br-mgmt"), HostNetworkLabel("mgmt")}},
		{"a bridge removed", base,
			capability(withBridge("br-mgmt", true, "eth1", "1,100"), withCondition("LinksProbed", metav1.ConditionTrue, t0)),
			[]string{BridgeLabel("br-edge")}},
		{"a probe failing wakes everything offered before or after", base,
			capability(withBridge("br-mgmt", true, "eth1", "1,100"), withBridge("br-edge", true, "eth2", ""), withCondition("LinksProbed", metav1.ConditionFalse, t0)),
			[]string{vmv1alpha1.LabelKVM, BridgeLabel("br-edge"), BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), HostNetworkLabel("mgmt")}},
		{"a new node offers what it has", nil, base,
			[]string{vmv1alpha1.LabelKVM, BridgeLabel("br-edge"), BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), HostNetworkLabel("mgmt")}},
		{"a deleted node took everything", base, nil,
			[]string{vmv1alpha1.LabelKVM, BridgeLabel("br-edge"), BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), HostNetworkLabel("mgmt")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Sorted(maps.Keys(ChangedRequirements(tc.old, tc.updated, wanted, offers)))
			want := slices.Sorted(slices.Values(tc.want))
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
		})
	}
}

func TestChangedLabelKeys(t *testing.T) {
	got := ChangedLabelKeys(map[string]string{"a": "1", "b": "2", "c": "3"}, map[string]string{"a": "1", "b": "20", "d": "4"})
	if strings.Join(got, ",") != "b,c,d" {
		t.Fatalf("got %v, want b (changed), c (removed), d (added)", got)
	}
	if got := ChangedLabelKeys(nil, nil); len(got) != 0 {
		t.Fatalf("got %v for two empty sets", got)
	}
}

func TestOffersOf(t *testing.T) {
	offers := OffersOf([]vmv1alpha1.HostNetwork{
		{ObjectMeta: metav1.ObjectMeta{Name: "mgmt"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "edge"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-edge", Managed: true}},
	})
	if len(offers) != 2 || offers[0].Name != "mgmt" || offers[0].Bridge != "br-mgmt" || !offers[1].Managed || offers[1].Bridge != "br-edge" {
		t.Fatalf("offers: %+v", offers)
	}
}
