package hostnetwork

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func hostNetwork(name, bridge string, age int) vmv1alpha1.HostNetwork {
	return vmv1alpha1.HostNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, age, 0, time.UTC))},
		Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: bridge},
	}
}

// TestBridgeConflict: one bridge name, one HostNetwork; the older keeps it
// and only the younger reports the conflict.
func TestBridgeConflict(t *testing.T) {
	older, younger, other := hostNetwork("a", "br0", 1), hostNetwork("b", "br0", 2), hostNetwork("c", "br1", 0)
	all := []vmv1alpha1.HostNetwork{older, younger, other}
	if c := bridgeConflict(&older, all); c != nil {
		t.Fatalf("the older keeps its bridge, got %+v", c)
	}
	c := bridgeConflict(&younger, all)
	if c == nil || c.Reason != vmv1alpha1.ReasonBridgeConflict || c.Status != metav1.ConditionFalse ||
		c.Message != "bridge br0 is already declared by the older HostNetwork a" {
		t.Fatalf("the younger must be refused, got %+v", c)
	}
	if c := bridgeConflict(&other, all); c != nil {
		t.Fatalf("another bridge does not conflict: %+v", c)
	}
	noBridge := hostNetwork("d", "", 3)
	if c := bridgeConflict(&noBridge, append(all, hostNetwork("e", "", 0))); c != nil {
		t.Fatalf("networks without a bridge name do not conflict: %+v", c)
	}
}

// TestUplinkOf: a node gets the uplink whose nodeSelector matches it; an
// uplink without selector matches every node; two matches are named.
func TestUplinkOf(t *testing.T) {
	h := hostNetwork("a", "br0", 0)
	h.Spec.Uplinks = []vmv1alpha1.Uplink{
		{NodeSelector: map[string]string{"rack": "r1"}, Interface: "eth1"},
		{NodeSelector: map[string]string{"rack": "r2"}, Bond: &vmv1alpha1.Bond{Name: "bond0"}},
		{NodeSelector: map[string]string{"gpu": "yes"}, Interface: "eth9"},
	}
	node := func(labels map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	}
	if uplink, overlap := uplinkOf(&h, node(map[string]string{"rack": "r2"})); uplink == nil || uplink.Bond.Name != "bond0" || overlap != "" {
		t.Fatalf("rack r2: %+v %q", uplink, overlap)
	}
	if uplink, _ := uplinkOf(&h, node(map[string]string{"rack": "r3"})); uplink != nil {
		t.Fatalf("rack r3 matches none, got %+v", uplink)
	}
	if _, overlap := uplinkOf(&h, node(map[string]string{"rack": "r1", "gpu": "yes"})); overlap != "eth1 and eth9" {
		t.Fatalf("overlap %q, want both named", overlap)
	}
	h.Spec.Uplinks = []vmv1alpha1.Uplink{{Interface: "eth1"}}
	if uplink, _ := uplinkOf(&h, node(nil)); uplink == nil || uplink.Interface != "eth1" {
		t.Fatalf("an uplink without selector matches every node, got %+v", uplink)
	}
}

// TestListUsers names the profiles that hold a deletion, sorted, at most
// maxUsersListed of them.
func TestListUsers(t *testing.T) {
	if got := listUsers([]types.NamespacedName{{Namespace: "b", Name: "x"}, {Namespace: "a", Name: "y"}}); got != "2 profile(s): a/y, b/x" {
		t.Fatalf("got %q", got)
	}
	var many []types.NamespacedName
	for i := range maxUsersListed + 3 {
		many = append(many, types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("p%02d", i)})
	}
	got := listUsers(many)
	if !strings.HasPrefix(got, fmt.Sprintf("%d profile(s): ns/p00, ", maxUsersListed+3)) || !strings.HasSuffix(got, " and 3 more") ||
		strings.Contains(got, fmt.Sprintf("p%02d", maxUsersListed)) {
		t.Fatalf("got %q", got)
	}
	if nodesOrPending(nil) != "no node yet" || nodesOrPending([]string{"n1", "n2"}) != "n1, n2" {
		t.Fatal("nodesOrPending")
	}
}
