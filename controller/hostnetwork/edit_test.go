package hostnetwork

import (
	"strings"
	"testing"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

func node(name string, labels map[string]string) corev1.Node {
	labels[corev1.LabelHostname] = name
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

var editNodes = []corev1.Node{
	node("a1", map[string]string{"grp": "a"}),
	node("a2", map[string]string{"grp": "a"}),
	node("b1", map[string]string{"grp": "b"}),
	node("c1", map[string]string{"grp": "c"}),
}

func policiesOfSpec(t *testing.T, spec vmv1alpha1.HostNetworkSpec) []*nmstatev1.NodeNetworkConfigurationPolicy {
	t.Helper()
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lab"}, Spec: spec}
	var out []*nmstatev1.NodeNetworkConfigurationPolicy
	for i := range h.Spec.Uplinks {
		state, err := desired.HostNetworkState(h, &h.Spec.Uplinks[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, desired.HostNetworkPolicy(h, &h.Spec.Uplinks[i], state))
	}
	return out
}

func lossesBetween(t *testing.T, before, after vmv1alpha1.HostNetworkSpec) map[string]loss {
	t.Helper()
	b, err := builtOn(policiesOfSpec(t, before), editNodes)
	if err != nil {
		t.Fatal(err)
	}
	a, err := builtOn(policiesOfSpec(t, after), editNodes)
	if err != nil {
		t.Fatal(err)
	}
	return lossesOf(b, a)
}

func bridgeSpec(uplinks ...vmv1alpha1.Uplink) vmv1alpha1.HostNetworkSpec {
	return vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lab", Managed: true, Uplinks: uplinks}
}

func group(name, grp, iface string) vmv1alpha1.Uplink {
	return vmv1alpha1.Uplink{Name: name, NodeSelector: map[string]string{"grp": grp}, Interface: iface}
}

func TestPolicyNamesAreStable(t *testing.T) {
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lab"}, Spec: bridgeSpec(vmv1alpha1.Uplink{Interface: "eth1"})}
	if got := desired.PolicyName(h, &h.Spec.Uplinks[0]); got != "vmop-lab" {
		t.Errorf("one unnamed uplink: %s, want the name earlier releases gave it, vmop-lab", got)
	}
	h.Spec = bridgeSpec(group("a", "a", "eth1"), group("b", "b", "eth2"))
	if got := desired.PolicyName(h, &h.Spec.Uplinks[1]); got != "vmop-lab.b" {
		t.Errorf("named group: %s", got)
	}
	h.Spec.Uplinks[1].NodeSelector = map[string]string{"grp": "z"}
	if got := desired.PolicyName(h, &h.Spec.Uplinks[1]); got != "vmop-lab.b" {
		t.Errorf("a selector edit renamed the named group's policy: %s", got)
	}
	long := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("n", 50)},
		Spec: bridgeSpec(vmv1alpha1.Uplink{Name: strings.Repeat("g", 20), Interface: "eth1"})}
	if got := desired.PolicyName(long, &long.Spec.Uplinks[0]); len(got) > 63 || got != desired.PolicyName(long, &long.Spec.Uplinks[0]) {
		t.Errorf("long names: %s (%d characters)", got, len(got))
	}
	if got := desired.RevertPolicyName(strings.Repeat("n", 50), "node a1"); len(got) > 63 {
		t.Errorf("revert policy name %s is %d characters", got, len(got))
	}
}

func TestLossesAreJudgedPerNode(t *testing.T) {
	one := bridgeSpec(vmv1alpha1.Uplink{Interface: "eth1"})
	split := bridgeSpec(group("a", "a", "eth1"), group("b", "b", "eth1"), group("c", "c", "eth1"))
	if losses := lossesBetween(t, one, split); len(losses) != 0 {
		t.Errorf("a split covering every node takes nothing, got %+v", losses)
	}
	if losses := lossesBetween(t, split, one); len(losses) != 0 {
		t.Errorf("a merge takes nothing, got %+v", losses)
	}
	partial := bridgeSpec(group("a", "a", "eth1"), group("b", "b", "eth1"))
	losses := lossesBetween(t, one, partial)
	if len(losses) != 1 || len(losses["c1"].revert) != 1 || losses["c1"].revert[0].Name != "br-lab" {
		t.Errorf("only c1 loses br-lab, got %+v", losses)
	}
	bonded := bridgeSpec(vmv1alpha1.Uplink{Bond: &vmv1alpha1.Bond{Name: "bond0", Mode: "active-backup", Ports: []string{"eth3", "eth4"}}})
	losses = lossesBetween(t, bonded, one)
	if len(losses) != 4 || len(losses["a1"].revert) != 1 || losses["a1"].revert[0].Name != "bond0" {
		t.Errorf("a bond swapped for a NIC loses the bond and keeps the bridge, got %+v", losses)
	}
	sriov := func(vfs int32) vmv1alpha1.HostNetworkSpec {
		return vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeSRIOV, Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "ens1f0"}},
			SRIOV: &vmv1alpha1.HostSRIOV{NumVFs: ptr.To(vfs), ResourceName: "intel.com/sriov"}}
	}
	losses = lossesBetween(t, sriov(8), sriov(4))
	if len(losses) != 4 || len(losses["b1"].vfs) != 1 || len(losses["b1"].revert) != 0 {
		t.Errorf("a VF count change destroys the VFs (held with VMs), reverts nothing, got %+v", losses)
	}
}

func TestBlockedNamesNodesWithVMs(t *testing.T) {
	losses := map[string]loss{"b1": {revert: []desired.BuiltInterface{{Name: "br-lab", Type: "linux-bridge"}}}, "c1": {vfs: []string{"ens1f0"}}}
	stops := blocked(losses, map[string][]string{"b1": {"ns/p1", "ns/p2", "ns/p3", "ns/p4"}, "a1": {"ns/p5"}})
	if len(stops) != 1 || stops[0] != "b1 loses br-lab (VMs of ns/p1, ns/p2, ns/p3, 1 more)" {
		t.Errorf("stops: %q", stops)
	}
}

func TestRevertIsAimedAtOneNode(t *testing.T) {
	selector, err := hostnameSelector("b1", editNodes)
	if err != nil || selector[corev1.LabelHostname] != "b1" || len(selector) != 1 {
		t.Fatalf("selector %v, %v", selector, err)
	}
	twins := append([]corev1.Node{node("x", map[string]string{})}, editNodes...)
	twins[0].Labels[corev1.LabelHostname] = "b1"
	if _, err := hostnameSelector("b1", twins); err == nil {
		t.Error("a hostname two nodes share must not aim a revert")
	}
	kept := keptBy([]desired.BuiltInterface{{Name: "bond0", Type: "bond"}, {Name: "br-lab", Type: "linux-bridge"}},
		&built{byName: map[string]desired.BuiltInterface{"br-lab": {Name: "br-lab", Type: "linux-bridge"}}})
	if len(kept) != 1 || kept[0].Name != "bond0" {
		t.Errorf("a pending revert keeps what the plan builds again: %+v", kept)
	}
}

// TestANodeLeavingTheSelectorLosesWhatWasBuilt: the spec does not change,
// but b1's labels do, so group b's policy no longer selects it. The
// builtOn record remembers it: b1 loses the bridge, alone.
// Without the record the loss is invisible (kubernetes-nmstate deletes
// b1's enactment and reverts nothing).
func TestANodeLeavingTheSelectorLosesWhatWasBuilt(t *testing.T) {
	policies := policiesOfSpec(t, bridgeSpec(group("a", "a", "eth1"), group("b", "b", "eth2")))
	record := builtRecord(policies, editNodes)
	if len(record) != 2 || record[1].Policy != "vmop-lab.b" || strings.Join(record[1].Nodes, ",") != "b1" {
		t.Fatalf("record: %+v", record)
	}
	moved := []corev1.Node{editNodes[0], editNodes[1], node("b1", map[string]string{"grp": "elsewhere"}), editNodes[3]}
	before, err := builtOn(policies, moved)
	if err != nil {
		t.Fatal(err)
	}
	after, err := builtOn(policies, moved)
	if err != nil {
		t.Fatal(err)
	}
	if losses := lossesOf(before, after); len(losses) != 0 {
		t.Fatalf("without the record: %v", losses)
	}
	if err := departed(before, policies, record, moved); err != nil {
		t.Fatal(err)
	}
	losses := lossesOf(before, after)
	if len(losses) != 1 || strings.Join(losses["b1"].what(), ",") != "br-lab" {
		t.Fatalf("losses with the record: %+v, want b1 to lose br-lab", losses)
	}
	// A node gone from the cluster, and a policy gone, are no loss.
	gone := []corev1.Node{editNodes[0], editNodes[1], editNodes[3]}
	empty := map[string]*built{}
	if err := departed(empty, policies[:1], record, gone); err != nil || len(empty) != 0 {
		t.Fatalf("gone node or policy: %v, %v", empty, err)
	}
}
