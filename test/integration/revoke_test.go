package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// shutdownFinalizer keeps a VM instance in place after KubeVirt deleted it, as
// a guest taking its time to shut down does.
const shutdownFinalizer = "test.vm.example.com/shutting-down"

// bridgeCapability is a node whose agent found bridge on bond0 with VLANs
// 300-301 and verified policy.
func bridgeCapability(bridge, policy string) vmv1alpha1.NodeCapabilityStatus {
	c := edgeCapability(true)
	c.Bridges[len(c.Bridges)-1].Name = bridge
	c.Policies[0].Name = policy
	return c
}

// revocable declares a managed bridge HostNetwork name (bridge br-name,
// VLANs 300-301) on one node of its own zone, selecting namespaces by
// selector, and returns the network option a profile on VLAN 300 uses.
func revocable(t *testing.T, name string, selector metav1.LabelSelector) (*vmv1alpha1.HostNetwork, func(*vmv1alpha1.VirtualMachineProfile)) {
	t.Helper()
	zone := name + "-test"
	zoneNodes(t, zone, map[string]vmv1alpha1.NodeCapabilityStatus{name + "-a": bridgeCapability("br-"+name, "vmop-"+name)})
	spec := edgeSpec(zone)
	spec.BridgeName = "br-" + name
	spec.NamespaceSelector = selector
	h := declare(t, name, spec)
	on := func(p *vmv1alpha1.VirtualMachineProfile) {
		inZone(zone)(p)
		p.Spec.Networks[0].BridgeName = "br-" + name
		p.Spec.Networks[0].VLANID = ptr.To[int32](300)
	}
	return h, on
}

// holdInstance puts shutdownFinalizer on a profile's instance and returns the
// function that lets it go (also run at cleanup).
func holdInstance(t *testing.T, ns, name string) func() {
	t.Helper()
	ctx := context.Background()
	key := client.ObjectKey{Namespace: ns, Name: vmv1alpha1.VMName(name)}
	var vmi kubevirtv1.VirtualMachineInstance
	if err := cluster.Client.Get(ctx, key, &vmi); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(vmi.DeepCopy())
	vmi.Finalizers = append(vmi.Finalizers, shutdownFinalizer)
	if err := cluster.Client.Patch(ctx, &vmi, patch); err != nil {
		t.Fatal(err)
	}
	release := func() {
		var current kubevirtv1.VirtualMachineInstance
		if err := cluster.Client.Get(ctx, key, &current); err != nil {
			return
		}
		patch := client.MergeFrom(current.DeepCopy())
		current.Finalizers = slices.DeleteFunc(current.Finalizers, func(f string) bool { return f == shutdownFinalizer })
		_ = cluster.Client.Patch(ctx, &current, patch)
	}
	t.Cleanup(release)
	return release
}

// expectRevoked waits until the profile's VM is halted and marked, its
// generated attachment is gone, and its NetworksConfigured condition has
// reason and a message naming what restores it; it also waits for the
// AccessRevoked event. The instance is kept (holdInstance) and shutting
// down.
func expectRevoked(t *testing.T, ns, name, network, reason string, says ...string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, name+" halted, its attachment deleted", func() (bool, string) {
		var vm kubevirtv1.VirtualMachine
		if !getObject(t, &vm, ns, vmv1alpha1.VMName(name)) {
			return false, "no VM"
		}
		nad := getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, desired.NADName(name, network))
		halted := vm.Spec.RunStrategy != nil && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyHalted
		return halted && !nad && vm.Annotations["vm.example.com/revoked"] != "",
			fmt.Sprintf("runStrategy %v, annotations %v, attachment there: %v", ptr.Deref(vm.Spec.RunStrategy, ""), vm.Annotations, nad)
	})
	p := waitForCondition(t, ns, name, vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, reason)
	message := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured)
	for _, want := range append(says, "the VM is halted and its attachments deleted: it starts again once") {
		if !strings.Contains(message, want) {
			t.Fatalf("message %q, want %q", message, want)
		}
	}
	expectEvent(t, ns, name, vmv1alpha1.EventAccessRevoked)
	var vmi kubevirtv1.VirtualMachineInstance
	observe.Eventually(t, 30*time.Second, "the instance shutting down", func() (bool, string) {
		return getObject(t, &vmi, ns, vmv1alpha1.VMName(name)) && !vmi.DeletionTimestamp.IsZero(), "not deleted yet"
	})
}

// expectRestored waits until the profile runs again: the VM has the
// profile's run strategy and no revoked mark, the attachment is back, and
// the AccessRestored event was recorded.
func expectRestored(t *testing.T, ns, name, network string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, name+" restored", func() (bool, string) {
		var vm kubevirtv1.VirtualMachine
		if !getObject(t, &vm, ns, vmv1alpha1.VMName(name)) {
			return false, "no VM"
		}
		nad := getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, desired.NADName(name, network))
		always := vm.Spec.RunStrategy != nil && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyAlways
		return always && nad && vm.Annotations["vm.example.com/revoked"] == "",
			fmt.Sprintf("runStrategy %v, annotations %v, attachment there: %v", ptr.Deref(vm.Spec.RunStrategy, ""), vm.Annotations, nad)
	})
	waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
	expectEvent(t, ns, name, vmv1alpha1.EventAccessRestored)
}

// usersOf are the profiles a HostNetwork counts as users, as its deletion does.
func usersOf(t *testing.T, hostNetwork string) []types.NamespacedName {
	t.Helper()
	users, err := attach.Reader{Client: cluster.Client, Multus: true}.Users(context.Background(), hostNetwork)
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func labelNamespace(t *testing.T, ns string, labels map[string]string) {
	t.Helper()
	var namespace corev1.Namespace
	if !getObject(t, &namespace, "", ns) {
		t.Fatalf("namespace %s missing", ns)
	}
	patch := client.MergeFrom(namespace.DeepCopy())
	namespace.Labels = labels
	if err := cluster.Client.Patch(context.Background(), &namespace, patch); err != nil {
		t.Fatal(err)
	}
}

// TestRevokeByNamespaceLabel: a namespace the HostNetwork's selector no
// longer selects loses the segment: the VM is halted, the operator's
// attachment deleted (through the controller's role and the chart's
// admission policies), and the condition and an event say how to restore
// it. Until its instance is gone the profile keeps the static address the
// instance uses, even after its spec moved away from it (a profile of
// another namespace asking for it is refused, then admitted once the
// instance is gone), and is still a user of the HostNetwork. Labelling the namespace again
// restores the VM.
func TestRevokeByNamespaceLabel(t *testing.T) {
	ctx := context.Background()
	_, on := revocable(t, "rvns", metav1.LabelSelector{MatchLabels: map[string]string{"rvns": "yes"}})
	team, other := newNamespace(t), newNamespace(t)
	labelNamespace(t, team, map[string]string{"rvns": "yes"})
	labelNamespace(t, other, map[string]string{"rvns": "yes"})
	create(t, profile("holder", team, on, withStaticIP("10.93.0.5/24")))
	waitForPhase(t, team, "holder", vmv1alpha1.PhaseRunning)
	if !getObject(t, &nadv1.NetworkAttachmentDefinition{}, team, "holder-lan") {
		t.Fatal("no attachment holder-lan before revocation")
	}
	release := holdInstance(t, team, "holder")

	labelNamespace(t, team, map[string]string{})
	expectRevoked(t, team, "holder", "lan", vmv1alpha1.ReasonNamespaceNotAllowed,
		"HostNetwork rvns does not allow namespace "+team, "HostNetwork rvns's spec.namespaceSelector selects namespace "+team+" again")
	if users := usersOf(t, "rvns"); !slices.Contains(users, types.NamespacedName{Namespace: team, Name: "holder"}) {
		t.Fatalf("a revoked profile whose instance lives is still a user: %v", users)
	}

	// The instance, not the spec, holds the address: edited away from it,
	// the revoked profile still keeps it while its guest runs.
	holder := getProfile(t, team, "holder")
	holder.Spec.Networks[0].IPConfig.Address = ptr.To("10.93.0.6/24")
	if err := cluster.Client.Update(ctx, holder); err != nil {
		t.Fatal(err)
	}
	create(t, profile("taker", other, on, withStaticIP("10.93.0.5/24")))
	p := waitForCondition(t, other, "taker", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonStaticIPConflict)
	if msg := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured); strings.Contains(msg, team) || !strings.Contains(msg, "static address 10.93.0.5") {
		t.Fatalf("taker's message: %q", msg)
	}

	release()
	waitForPhase(t, other, "taker", vmv1alpha1.PhaseRunning)
	if users := usersOf(t, "rvns"); slices.Contains(users, types.NamespacedName{Namespace: team, Name: "holder"}) {
		t.Fatalf("the instance is gone, the profile no longer uses the HostNetwork: %v", users)
	}

	// Restoring: the address is free again once the taker goes.
	if err := cluster.Client.Delete(ctx, getProfile(t, other, "taker")); err != nil {
		t.Fatal(err)
	}
	labelNamespace(t, team, map[string]string{"rvns": "yes"})
	expectRestored(t, team, "holder", "lan")
}

// TestRevokeByVLAN: removing a profile's VLAN from allowedVLANs halts its
// VM and deletes its attachment (a start by hand is undone), while a
// profile on a VLAN still allowed keeps running; the revoked profile counts as a user until its instance
// is gone; allowing the VLAN again restores it.
func TestRevokeByVLAN(t *testing.T) {
	ctx := context.Background()
	h, on := revocable(t, "rvvlan", metav1.LabelSelector{})
	ns := newNamespace(t)
	create(t, profile("tagged", ns, on, withStaticIP("10.94.0.5/24")))
	create(t, profile("kept", ns, on, func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].VLANID = ptr.To[int32](301) }))
	waitForPhase(t, ns, "tagged", vmv1alpha1.PhaseRunning)
	waitForPhase(t, ns, "kept", vmv1alpha1.PhaseRunning)
	release := holdInstance(t, ns, "tagged")

	edit := func(vlans ...vmv1alpha1.VLANRange) {
		current := getHostNetwork(t, h.Name)
		patch := client.MergeFrom(current.DeepCopy())
		current.Spec.AllowedVLANs = vlans
		if err := cluster.Client.Patch(ctx, current, patch); err != nil {
			t.Fatal(err)
		}
	}
	edit("301")
	expectRevoked(t, ns, "tagged", "lan", vmv1alpha1.ReasonVLANNotAllowed,
		"VLAN 300 is not allowed on HostNetwork rvvlan", "HostNetwork rvvlan's spec.allowedVLANs includes VLAN 300 again")
	if users := usersOf(t, "rvvlan"); !slices.Contains(users, types.NamespacedName{Namespace: ns, Name: "tagged"}) {
		t.Fatalf("a revoked profile whose instance lives is still a user: %v", users)
	}
	// A start by hand (virtctl start) does not put it back on the segment.
	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "tagged-vm")
	patch := client.MergeFrom(vm.DeepCopy())
	vm.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyAlways)
	if err := cluster.Client.Patch(ctx, &vm, patch); err != nil {
		t.Fatal(err)
	}
	expectRevoked(t, ns, "tagged", "lan", vmv1alpha1.ReasonVLANNotAllowed)
	if p := getProfile(t, ns, "kept"); p.Status.Phase != vmv1alpha1.PhaseRunning || !getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "kept-lan") {
		t.Fatalf("a profile on an allowed VLAN is not touched: %s", observe.Describe(p))
	}

	release()
	observe.Eventually(t, 30*time.Second, "tagged no longer a user", func() (bool, string) {
		users := usersOf(t, "rvvlan")
		return !slices.Contains(users, types.NamespacedName{Namespace: ns, Name: "tagged"}), fmt.Sprint(users)
	})
	edit("300-301")
	expectRestored(t, ns, "tagged", "lan")
}

// TestRevokeByHostNetworkDeletion: deleting a HostNetwork takes its users
// off: the VM is halted and its attachment deleted, the deletion waits
// while the instance lives (and names it), a new profile is refused, and
// another profile's named attachment on the same bridge is never deleted.
// Once the instance is gone the HostNetwork goes; declaring it again
// restores the VM.
func TestRevokeByHostNetworkDeletion(t *testing.T) {
	ctx := context.Background()
	h, on := revocable(t, "rvdel", metav1.LabelSelector{})
	ns := newNamespace(t)
	create(t, profile("user", ns, on, withStaticIP("10.95.0.5/24")))
	create(t, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "own-net", Namespace: ns},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-rvdel","vlan":301}`}})
	create(t, profile("named", ns, inZone("rvdel-test"), onNetwork(vmv1alpha1.NetworkConfig{Name: "lan", Type: "bridge", NADName: "own-net"})))
	waitForPhase(t, ns, "user", vmv1alpha1.PhaseRunning)
	waitForPhase(t, ns, "named", vmv1alpha1.PhaseRunning)
	release := holdInstance(t, ns, "user")

	if err := cluster.Client.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	expectRevoked(t, ns, "user", "lan", vmv1alpha1.ReasonHostNetworkNotAccepting,
		"HostNetwork rvdel is being deleted", "HostNetwork rvdel is declared again")
	observe.Eventually(t, 30*time.Second, "deletion held by the living instance", func() (bool, string) {
		deleting := meta.FindStatusCondition(getHostNetwork(t, "rvdel").Status.Conditions, vmv1alpha1.ConditionDeleting)
		return deleting != nil && deleting.Reason == vmv1alpha1.ReasonInUse && strings.Contains(deleting.Message, ns+"/user"), fmt.Sprintf("%+v", deleting)
	})
	if !getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "own-net") {
		t.Fatal("a user's named attachment was deleted")
	}
	create(t, profile("late", ns, on, withStaticIP("10.95.0.6/24")))
	waitForCondition(t, ns, "late", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonHostNetworkNotAccepting)
	for _, name := range []string{"late", "named"} {
		if err := cluster.Client.Delete(ctx, getProfile(t, ns, name)); err != nil {
			t.Fatal(err)
		}
	}

	release()
	observe.Eventually(t, time.Minute, "HostNetwork gone once the instance is", func() (bool, string) {
		return !getObject(t, &vmv1alpha1.HostNetwork{}, "", "rvdel"), "still there"
	})
	if !getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "own-net") {
		t.Fatal("a user's named attachment was deleted")
	}
	spec := h.Spec.DeepCopy()
	declare(t, "rvdel", *spec)
	expectRestored(t, ns, "user", "lan")
}

// TestTransientStatesDoNotHalt: a node's NodeCapability vanishing (its
// agent restarting), past the grace its node label keeps, is no rule that
// excludes the profile: the VM keeps its run strategy and its attachment.
func TestTransientStatesDoNotHalt(t *testing.T) {
	ctx := context.Background()
	_, on := revocable(t, "rvtr", metav1.LabelSelector{})
	ns := newNamespace(t)
	create(t, profile("steady", ns, on))
	waitForPhase(t, ns, "steady", vmv1alpha1.PhaseRunning)
	if err := cluster.Client.Delete(ctx, &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "rvtr-a"}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * labelGrace); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var vm kubevirtv1.VirtualMachine
		if !getObject(t, &vm, ns, "steady-vm") || ptr.Deref(vm.Spec.RunStrategy, "") != kubevirtv1.RunStrategyAlways || vm.Annotations["vm.example.com/revoked"] != "" ||
			!getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "steady-lan") {
			t.Fatalf("a transient state halted the VM or removed its attachment: runStrategy %v, annotations %v", ptr.Deref(vm.Spec.RunStrategy, ""), vm.Annotations)
		}
	}
}
