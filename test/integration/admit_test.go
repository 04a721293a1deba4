package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestAdmitNamedNADs: a user-made NetworkAttachmentDefinition whose config
// reaches a declared bridge obeys that HostNetwork's namespaceSelector, and
// one reaching a bridge nothing declares is refused like an undeclared
// network. Each refusal names the profile field and the NAD, and the
// profile gets no VM.
func TestAdmitNamedNADs(t *testing.T) {
	declare(t, "admit-blue", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-admitblue",
		NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}})
	cases := []struct {
		name, bridge, reason, message string
	}{
		{"selector", "br-admitblue", vmv1alpha1.ReasonNamespaceNotAllowed, "HostNetwork admit-blue does not allow namespace"},
		{"undeclared", "br-admitnone", vmv1alpha1.ReasonHostNetworkNotDeclared, "no HostNetwork declares bridge br-admitnone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := newNamespace(t)
			create(t, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "own-net", Namespace: ns},
				Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: fmt.Sprintf(`{"cniVersion":"0.3.1","type":"bridge","bridge":%q,"vlan":7}`, c.bridge)}})
			create(t, profile("named", ns, onNetwork(vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", NADName: "own-net"})))
			p := waitForCondition(t, ns, "named", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, c.reason)
			msg := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured)
			if !strings.Contains(msg, "network n: spec.networks[0].nadName "+ns+"/own-net: ") || !strings.Contains(msg, c.message) {
				t.Fatalf("message %q, want the field, the NAD and %q", msg, c.message)
			}
			if p.Status.Phase != vmv1alpha1.PhaseError || getObject(t, &kubevirtv1.VirtualMachine{}, ns, "named-vm") {
				t.Fatalf("a refused named network gets no VM: %s", observe.Describe(p))
			}
			expectEvent(t, ns, "named", c.reason)
		})
	}
}

// gateCapability is a node whose agent found br-gate on bond0 and verified
// policy vmop-gate.
func gateCapability() vmv1alpha1.NodeCapabilityStatus {
	c := edgeCapability(true)
	c.Bridges[len(c.Bridges)-1].Name = "br-gate"
	c.Policies[0].Name = "vmop-gate"
	return c
}

// TestAdmitDeletingHostNetworkRefusesNewUsers: while a HostNetwork waits
// for its user's instance to go, a new profile on it is refused with the
// reason; the existing user is taken off (its VM halted) and is the only
// one the deletion waits for, until its instance is gone.
func TestAdmitDeletingHostNetworkRefusesNewUsers(t *testing.T) {
	ctx := context.Background()
	zoneNodes(t, "gate-test", map[string]vmv1alpha1.NodeCapabilityStatus{"gate-a": gateCapability()})
	spec := edgeSpec("gate-test")
	spec.BridgeName = "br-gate"
	h := declare(t, "gate", spec)
	network := onNetwork(vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-gate", VLANID: ptr.To[int32](300)})
	ns := newNamespace(t)
	create(t, profile("old", ns, inZone("gate-test"), network))
	waitForPhase(t, ns, "old", vmv1alpha1.PhaseRunning)
	release := holdInstance(t, ns, "old")

	if err := cluster.Client.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "deletion held by its user", func() (bool, string) {
		deleting := meta.FindStatusCondition(getHostNetwork(t, "gate").Status.Conditions, vmv1alpha1.ConditionDeleting)
		return deleting != nil && deleting.Reason == vmv1alpha1.ReasonInUse && strings.Contains(deleting.Message, ns+"/old"), fmt.Sprintf("%+v", deleting)
	})

	create(t, profile("new", ns, inZone("gate-test"), network))
	p := waitForCondition(t, ns, "new", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonHostNetworkNotAccepting)
	if msg := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured); !strings.Contains(msg, "network n: HostNetwork gate is being deleted and accepts no users") {
		t.Fatalf("message %q", msg)
	}
	if p.Status.Phase != vmv1alpha1.PhaseError || getObject(t, &kubevirtv1.VirtualMachine{}, ns, "new-vm") {
		t.Fatalf("a refused new user gets no VM: %s", observe.Describe(p))
	}
	expectEvent(t, ns, "new", vmv1alpha1.ReasonHostNetworkNotAccepting)

	// The existing user is taken off, and only its instance holds the deletion.
	expectRevoked(t, ns, "old", "n", vmv1alpha1.ReasonHostNetworkNotAccepting, "HostNetwork gate is being deleted")
	deleting := meta.FindStatusCondition(getHostNetwork(t, "gate").Status.Conditions, vmv1alpha1.ConditionDeleting)
	if deleting == nil || !strings.Contains(deleting.Message, "1 profile(s): "+ns+"/old") {
		t.Fatalf("the deletion waits for the existing user only: %+v", deleting)
	}

	release()
	observe.Eventually(t, 30*time.Second, "HostNetwork gone once its user is", func() (bool, string) {
		return !getObject(t, &vmv1alpha1.HostNetwork{}, "", "gate"), "still there"
	})
}
