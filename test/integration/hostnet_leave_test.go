package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// relabel sets one label of a node, as an admin does.
func relabel(t *testing.T, node, key, value string) {
	t.Helper()
	observe.Eventually(t, 10*time.Second, "relabel node "+node, func() (bool, string) {
		var n corev1.Node
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: node}, &n); err != nil {
			return false, err.Error()
		}
		n.Labels[key] = value
		err := cluster.Client.Update(context.Background(), &n)
		return err == nil, fmt.Sprint(err)
	})
}

// hasEnactment says whether nmstate has an enactment of the policy on the node.
func hasEnactment(t *testing.T, node, policy string) bool {
	t.Helper()
	return getObject(t, &nmstatev1beta1.NodeNetworkConfigurationEnactment{}, "", nmstateshared.EnactmentKey(node, policy).Name)
}

// TestANodeLeavingTheSelectorIsReverted: a node's labels change so that a
// managed HostNetwork no longer selects it. As kubernetes-nmstate does,
// the simulated nmstate deletes the node's enactment and reverts nothing;
// the operator remembers the node (status.builtOn) and reverts it through
// its own revert policy, held while a VM of the network runs there
// (EditHeld), then applied, and gone well before its deadline. The nodes
// that stay are never told to remove the bridge.
func TestANodeLeavingTheSelectorIsReverted(t *testing.T) {
	const zone = "lv"
	nodes := editNodes(t, zone)
	a1, a2, b1 := zone+"-a1", zone+"-a2", zone+"-b1"
	policies := recordPolicies(t, zone)
	declare(t, zone, vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-" + zone, Managed: true,
		Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, NodeSelector: map[string]string{"zone": zone}, NamespaceSelector: metav1.LabelSelector{}})
	group := "vmop-" + zone
	policiesAre(t, zone, map[string]map[string]string{group: {"zone": zone}})
	observe.Eventually(t, 30*time.Second, "builtOn records the three nodes and each has an enactment", func() (bool, string) {
		h := getHostNetwork(t, zone)
		ok := len(h.Status.BuiltOn) == 1 && strings.Join(h.Status.BuiltOn[0].Nodes, ",") == strings.Join([]string{a1, a2, b1}, ",")
		return ok && hasEnactment(t, b1, group), fmt.Sprintf("builtOn %+v", h.Status.BuiltOn)
	})
	ns := newNamespace(t)
	runVMOn(t, ns, "vm-b", zone, b1)

	mark := policies.mark()
	relabel(t, b1, "zone", "elsewhere")
	nodes[b1]["zone"] = "elsewhere"
	observe.Eventually(t, 30*time.Second, "nmstate forgets "+b1, func() (bool, string) {
		return !hasEnactment(t, b1, group), "enactment still there"
	})
	expectHeld(t, zone, b1, ns+"/vm-b")
	if told := policies.toldAbsent(mark, "br-"+zone, nodes); len(told) != 0 {
		t.Fatalf("told to remove br-%s while vm-b runs on %s: %v", zone, b1, told)
	}

	if err := cluster.Client.Delete(context.Background(), getProfile(t, ns, "vm-b")); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	expectNotHeld(t, zone)
	revert := desired.RevertPolicyName(zone, "node "+b1)
	observe.Eventually(t, 30*time.Second, "revert "+revert+" written", func() (bool, string) {
		told := policies.toldAbsent(mark, "br-"+zone, nodes)
		return len(told) == 1 && len(told[b1]) > 0, fmt.Sprintf("told: %v", told)
	})
	expectEvent(t, "default", zone, vmv1alpha1.ReasonReverting)
	observe.Eventually(t, 30*time.Second, "revert "+revert+" done and deleted", func() (bool, string) {
		_, there := policyState(t, revert)
		return !there, "still there"
	})
	// Done because nmstate applied it on b1, not because its deadline passed.
	if took := time.Since(released); took >= revertTimeout {
		t.Errorf("the revert took %s, its full deadline (%s)", took, revertTimeout)
	}
	expectNoEvent(t, "default", zone, vmv1alpha1.ReasonRevertTimedOut)
	policies.expectNeverAbsent(t, mark, "br-"+zone, nodes, a1, a2)
	if h := getHostNetwork(t, zone); len(h.Status.BuiltOn) != 1 || strings.Join(h.Status.BuiltOn[0].Nodes, ",") != a1+","+a2 {
		t.Errorf("builtOn after the revert: %+v", h.Status.BuiltOn)
	}
}

// expectNoEvent checks that no event of the reason regards the object.
func expectNoEvent(t *testing.T, namespace, name, reason string) {
	t.Helper()
	var list eventsv1.EventList
	if err := cluster.Client.List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			t.Errorf("event %s on %s: %s", reason, name, e.Note)
		}
	}
}

// TestAPolicySelectingNoNodeIsIgnored: kubernetes-nmstate reports a policy
// that selects no node Ignored, reason NoMatchingNode, not Available.
func TestAPolicySelectingNoNodeIsIgnored(t *testing.T) {
	const zone = "nomatch"
	declare(t, zone, vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-" + zone, Managed: true,
		Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, NodeSelector: map[string]string{"zone": zone}, NamespaceSelector: metav1.LabelSelector{}})
	observe.Eventually(t, 30*time.Second, "policy Ignored", func() (bool, string) {
		var policy nmstatev1.NodeNetworkConfigurationPolicy
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "vmop-" + zone}, &policy); err != nil {
			return false, err.Error()
		}
		ignored := policy.Status.Conditions.Find(nmstateshared.NodeNetworkConfigurationPolicyConditionIgnored)
		available := policy.Status.Conditions.Find(nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable)
		return ignored != nil && ignored.Status == corev1.ConditionTrue && ignored.Reason == nmstateshared.NodeNetworkConfigurationPolicyConditionConfigurationNoMatchingNode &&
			available != nil && available.Status == corev1.ConditionFalse, fmt.Sprintf("%+v", policy.Status.Conditions)
	})
	observe.Eventually(t, 30*time.Second, "HostNetwork selects no node", func() (bool, string) {
		ready := meta.FindStatusCondition(getHostNetwork(t, zone).Status.Conditions, vmv1alpha1.ConditionReady)
		return ready != nil && ready.Reason == vmv1alpha1.ReasonNoNodesSelected, fmt.Sprintf("%+v", ready)
	})
}
