package integration

// The controller reads no Secret: cloud-init inline in the VM, a Secret
// only for data too long for that, written unread. (This file sorts after
// converged_test.go on purpose: the teardown of a test namespace keeps the
// controller busy for a moment, which the converged test's quiet period
// would count.)

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// cloudInitOf is the VM's cloud-init volume source (to read, or to edit in place).
func cloudInitOf(t *testing.T, vm *kubevirtv1.VirtualMachine) *kubevirtv1.CloudInitNoCloudSource {
	t.Helper()
	for i := range vm.Spec.Template.Spec.Volumes {
		if source := vm.Spec.Template.Spec.Volumes[i].CloudInitNoCloud; source != nil {
			return source
		}
	}
	t.Fatalf("VM %s has no cloud-init volume", vm.Name)
	return nil
}

// withLongNetworkData adds ten networks on br-lan, each with a static
// IPv6 address, a gateway and three DNS servers: 2,724 bytes of network
// data with the default network, more than KubeVirt takes inline (seven
// make 1,939, which fit).
func withLongNetworkData(p *vmv1alpha1.VirtualMachineProfile) {
	for i := 0; i < 10; i++ {
		p.Spec.Networks = append(p.Spec.Networks, vmv1alpha1.NetworkConfig{
			Name: fmt.Sprintf("v6-%d", i), Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lan",
			IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic,
				Address: ptr.To(fmt.Sprintf("2001:db8:%x::10/64", i+1)), Gateway: ptr.To(vmv1alpha1.IPAddress(fmt.Sprintf("2001:db8:%x::1", i+1))),
				DNSServers: []vmv1alpha1.IPAddress{"2001:db8:53::1", "2001:db8:53::2", "2001:db8:53::3"}},
		})
	}
}

// TestLongCloudInitGoesInASecret: network data longer than KubeVirt takes
// inline goes in <profile>-cloudinit, written without being read; the VM
// records its hash. At rest nothing is written; a change of the profile
// rewrites the Secret once. An orphan deletion of the profile keeps the
// Secret and the running VM; a profile re-created with the name adopts
// both (same objects, the guest not restarted), so a later deletion takes
// the Secret with it.
func TestLongCloudInitGoesInASecret(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("long", ns, withLongNetworkData))
	waitForPhase(t, ns, "long", vmv1alpha1.PhaseRunning)

	var vm kubevirtv1.VirtualMachine
	var secret corev1.Secret
	getObject(t, &vm, ns, "long-vm")
	source := cloudInitOf(t, &vm)
	if source.NetworkDataSecretRef == nil || source.NetworkDataSecretRef.Name != "long-cloudinit" || source.NetworkData != "" {
		t.Fatalf("the VM's cloud-init: %+v, want a reference to long-cloudinit", source)
	}
	if !getObject(t, &secret, ns, "long-cloudinit") {
		t.Fatal("no cloud-init Secret")
	}
	networkData := string(secret.Data[desired.NetworkDataKey])
	if len(networkData) <= desired.MaxInlineCloudInitBytes || !strings.Contains(networkData, "2001:db8:a::10/64") {
		t.Fatalf("network data (%d bytes):\n%s", len(networkData), networkData)
	}
	if vm.Annotations[vmv1alpha1.AnnotationCloudInitHash] != desired.CloudInitHash(&secret) {
		t.Fatalf("VM records cloud-init hash %q, the Secret's is %q", vm.Annotations[vmv1alpha1.AnnotationCloudInitHash], desired.CloudInitHash(&secret))
	}
	t.Logf("network data %d bytes, in Secret long-cloudinit", len(networkData))

	time.Sleep(2 * time.Second) // the last status write and its echo
	quiet := controllerWrites.snapshot()
	version := secret.ResourceVersion
	p := getProfile(t, ns, "long")
	p.Labels = map[string]string{"touched": "yes"} // wakes a reconcile, changes nothing
	if err := cluster.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if writes, what := controllerWrites.since(quiet); strings.Contains(what, "secrets") {
		t.Errorf("the unchanged cloud-init Secret was written: %d writes (%s)", writes, what)
	}
	getObject(t, &secret, ns, "long-cloudinit")
	if secret.ResourceVersion != version {
		t.Errorf("the unchanged cloud-init Secret changed: resourceVersion %s → %s", version, secret.ResourceVersion)
	}

	p = getProfile(t, ns, "long")
	p.Spec.Networks[1].MTU = ptr.To[int32](1400)
	if err := cluster.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "cloud-init Secret and VM hash follow the profile", func() (bool, string) {
		getObject(t, &secret, ns, "long-cloudinit")
		getObject(t, &vm, ns, "long-vm")
		return strings.Contains(string(secret.Data[desired.NetworkDataKey]), "mtu: 1400") &&
				vm.Annotations[vmv1alpha1.AnnotationCloudInitHash] == desired.CloudInitHash(&secret),
			fmt.Sprintf("VM hash %s, Secret hash %s", vm.Annotations[vmv1alpha1.AnnotationCloudInitHash], desired.CloudInitHash(&secret))
	})

	getObject(t, &secret, ns, "long-cloudinit")
	var vmi kubevirtv1.VirtualMachineInstance
	if !getObject(t, &vmi, ns, "long-vm") {
		t.Fatal("no VM instance")
	}
	kept := map[string]types.UID{"Secret": secret.UID, "VM": vm.UID, "VM instance": vmi.UID}
	deleteProfile(t, ns, "long", metav1.DeletePropagationOrphan)
	observe.Eventually(t, 60*time.Second, "profile gone, Secret left without owner", func() (bool, string) {
		if getObject(t, &vmv1alpha1.VirtualMachineProfile{}, ns, "long") {
			return false, "profile still there"
		}
		lost, owners := keptCloudInit(t, ns, kept)
		return len(lost) > 0 || (owners["Secret"] == "" && owners["VM"] == ""), fmt.Sprintf("owners %v", owners)
	})
	for deadline := time.Now().Add(orphanKeepTime); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if lost, _ := keptCloudInit(t, ns, kept); len(lost) > 0 {
			t.Fatalf("orphan deletion lost %v (deleted or replaced)", lost)
		}
	}

	// The same spec as the deleted one: the Secret's content is unchanged,
	// and it must still be taken back.
	again := profile("long", ns, withLongNetworkData)
	again.Spec.Networks[1].MTU = ptr.To[int32](1400)
	create(t, again)
	recreated := waitForPhase(t, ns, "long", vmv1alpha1.PhaseRunning)
	observe.Eventually(t, 30*time.Second, "Secret and VM adopted, none replaced", func() (bool, string) {
		lost, owners := keptCloudInit(t, ns, kept)
		if len(lost) > 0 {
			t.Fatalf("after re-creation, lost or replaced: %v", lost)
		}
		return owners["Secret"] == recreated.UID && owners["VM"] == recreated.UID, fmt.Sprintf("owners %v, want %s", owners, recreated.UID)
	})

	deleteProfile(t, ns, "long", metav1.DeletePropagationBackground)
	observe.Eventually(t, 60*time.Second, "adopted cloud-init Secret collected with the profile", func() (bool, string) {
		return !getObject(t, &corev1.Secret{}, ns, "long-cloudinit"), "still there"
	})
}

// keptCloudInit lists which of the Secret, VM and VM instance read into
// want are gone or replaced, and gives the kept ones' controller UIDs.
func keptCloudInit(t *testing.T, ns string, want map[string]types.UID) (lost []string, owners map[string]types.UID) {
	t.Helper()
	owners = map[string]types.UID{}
	for what, obj := range map[string]client.Object{
		"Secret": &corev1.Secret{}, "VM": &kubevirtv1.VirtualMachine{}, "VM instance": &kubevirtv1.VirtualMachineInstance{},
	} {
		name := "long-vm"
		if what == "Secret" {
			name = "long-cloudinit"
		}
		if !getObject(t, obj, ns, name) || obj.GetUID() != want[what] {
			lost = append(lost, what)
			continue
		}
		if ref := metav1.GetControllerOf(obj); ref != nil {
			owners[what] = ref.UID
		}
	}
	return lost, owners
}

// TestUpgradeKeepsTheRunningVMAndItsSecret: a VM written by an earlier
// version takes its cloud-init from <profile>-cloudinit. The new
// controller moves the data inline in the VM's template (KubeVirt applies
// it at the next restart), does not restart the running instance, and
// leaves the old Secret to the garbage collector, which removes it with
// the profile: the running instance (and a migration of it) still needs it.
func TestUpgradeKeepsTheRunningVMAndItsSecret(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("upgraded", ns))
	p := waitForPhase(t, ns, "upgraded", vmv1alpha1.PhaseRunning)
	var vmi kubevirtv1.VirtualMachineInstance
	if !getObject(t, &vmi, ns, "upgraded-vm") {
		t.Fatal("no VM instance")
	}
	running := vmi.UID

	restart := withControllerStopped(t)
	secret, err := desired.CloudInitSecret(p)
	if err != nil {
		t.Fatal(err)
	}
	create(t, secret)
	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "upgraded-vm")
	handEdit(t, &vm, func() {
		ref := &corev1.LocalObjectReference{Name: secret.Name}
		*cloudInitOf(t, &vm) = kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: ref, NetworkDataSecretRef: ref}
	})
	restart()

	observe.Eventually(t, 30*time.Second, "VM template takes its cloud-init inline", func() (bool, string) {
		getObject(t, &vm, ns, "upgraded-vm")
		source := cloudInitOf(t, &vm)
		return source.NetworkData != "" && source.NetworkDataSecretRef == nil, fmt.Sprintf("%+v", source)
	})
	time.Sleep(2 * time.Second)
	if !getObject(t, &vmi, ns, "upgraded-vm") || vmi.UID != running {
		t.Errorf("the running VM instance was replaced (UID %s, was %s)", vmi.UID, running)
	}
	if !getObject(t, &corev1.Secret{}, ns, secret.Name) {
		t.Error("the old cloud-init Secret was deleted while the running instance refers to it")
	}
	deleteProfile(t, ns, "upgraded", metav1.DeletePropagationBackground)
	observe.Eventually(t, 60*time.Second, "old cloud-init Secret collected with the profile", func() (bool, string) {
		return !getObject(t, &corev1.Secret{}, ns, secret.Name), "still there"
	})
}

// TestMissingSSHKeySecretIsKubeVirts: the controller cannot read Secrets,
// so it does not check that sshKeySecret exists; the VM refers to it and
// KubeVirt (its virt-launcher pod) waits for it. (The simulator does not
// play that wait: the profile goes on to Running, which the test awaits
// so that no reconcile of it runs on into the next test.)
func TestMissingSSHKeySecretIsKubeVirts(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("keyless", ns, func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.SSHKeySecret = "my-key" }))
	observe.Eventually(t, 30*time.Second, "VM written with the key reference", func() (bool, string) {
		var vm kubevirtv1.VirtualMachine
		if !getObject(t, &vm, ns, "keyless-vm") {
			return false, "no VM"
		}
		credentials := vm.Spec.Template.Spec.AccessCredentials
		return len(credentials) == 1 && credentials[0].SSHPublicKey.Source.Secret.SecretName == "my-key", fmt.Sprintf("%+v", credentials)
	})
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "my-key"}, &corev1.Secret{}); err == nil {
		t.Fatal("the key Secret exists")
	}
	waitForPhase(t, ns, "keyless", vmv1alpha1.PhaseRunning)
}

// TestForeignCloudInitSecretIsNeverOverwritten: the controller writes the
// cloud-init Secret unread, so it cannot see that a Secret of that name is
// someone else's; the chart's admission policy refuses the write, and the
// profile reports the name conflict. The Secret keeps its data.
func TestForeignCloudInitSecretIsNeverOverwritten(t *testing.T) {
	ns := newNamespace(t)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "taken-cloudinit", Namespace: ns},
		StringData: map[string]string{"password": "hunter2"}}
	create(t, foreign)
	create(t, profile("taken", ns, withLongNetworkData))
	p := waitForCondition(t, ns, "taken", vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonNameConflict)
	if getObject(t, &kubevirtv1.VirtualMachine{}, ns, "taken-vm") {
		t.Fatalf("VM written although its cloud-init Secret could not be: %s", observe.Describe(p))
	}
	var secret corev1.Secret
	getObject(t, &secret, ns, "taken-cloudinit")
	if string(secret.Data["password"]) != "hunter2" || len(secret.Data) != 1 || secret.Labels[vmv1alpha1.LabelManagedBy] != "" {
		t.Fatalf("someone else's Secret was changed: labels %v, keys %d", secret.Labels, len(secret.Data))
	}
	t.Logf("%s", observe.Describe(p))
	expectEvent(t, ns, "taken", vmv1alpha1.ReasonNameConflict)
}
