package integration

import (
	"context"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// profile builds a small profile; options adjust it.
func profile(name, namespace string, options ...func(*vmv1alpha1.VirtualMachineProfile)) *vmv1alpha1.VirtualMachineProfile {
	p := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{
			CPU: 1, Memory: "1Gi",
			Networks: []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge,
				IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}}},
		},
	}
	for _, option := range options {
		option(p)
	}
	return p
}

func withDisk(name, size, class string, retain vmv1alpha1.RetainPolicy) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.Disks = append(p.Spec.Disks, vmv1alpha1.DiskConfig{Name: name, Size: size, StorageClassName: class,
			Boot: len(p.Spec.Disks) == 0, RetainPolicy: retain})
	}
}

func withImage(image string) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.OSImage = image }
}

func withStaticIP(address string) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.Networks[0].IPConfig = &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To(address)}
	}
}

func getObject(t *testing.T, obj client.Object, namespace, name string) bool {
	t.Helper()
	err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestVMDeletedFromUnderTheProfileIsRecreatedWithTheSameDisks is the seed's
// recovery scenario.
func TestVMDeletedFromUnderTheProfileIsRecreatedWithTheSameDisks(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("recover", ns, withImage("registry.local/os:1"), withDisk("system", "10Gi", "huamei-sc-ssd", ""), withDisk("data", "5Gi", "huamei-sc-hdd", "")))
	waitForPhase(t, ns, "recover", vmv1alpha1.PhaseRunning)
	var system, data corev1.PersistentVolumeClaim
	getObject(t, &system, ns, "recover-system")
	getObject(t, &data, ns, "recover-data")
	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "recover-vm")
	oldUID := vm.UID
	if err := cluster.Client.Delete(context.Background(), &vm); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "VM re-created", func() (bool, string) {
		var again kubevirtv1.VirtualMachine
		return getObject(t, &again, ns, "recover-vm") && again.UID != oldUID, "old VM still there or none yet"
	})
	waitForPhase(t, ns, "recover", vmv1alpha1.PhaseRunning)
	expectEvent(t, ns, "recover", vmv1alpha1.EventRecreated)
	var systemAfter, dataAfter corev1.PersistentVolumeClaim
	getObject(t, &systemAfter, ns, "recover-system")
	getObject(t, &dataAfter, ns, "recover-data")
	if systemAfter.UID != system.UID || dataAfter.UID != data.UID {
		t.Fatal("disks were replaced when the VM was re-created")
	}
}

// TestForeignObjectsWithClashingNamesAreLeftAlone: a PVC and a NAD the
// operator did not create are never modified or adopted; the profile says why it waits.
func TestForeignObjectsWithClashingNamesAreLeftAlone(t *testing.T) {
	ns := newNamespace(t)
	foreign := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "clash-data", Namespace: ns, Labels: map[string]string{"owner": "someone-else"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	create(t, foreign)
	foreignNAD := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "clash-lan", Namespace: ns},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"macvlan"}`}}
	create(t, foreignNAD)
	create(t, profile("clash", ns, withDisk("data", "5Gi", "", "")))
	p := waitForCondition(t, ns, "clash", vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonNameConflict)
	if p.Status.Phase != vmv1alpha1.PhaseError {
		t.Fatalf("phase: %s", observe.Describe(p))
	}
	var pvc corev1.PersistentVolumeClaim
	var nad nadv1.NetworkAttachmentDefinition
	getObject(t, &pvc, ns, "clash-data")
	getObject(t, &nad, ns, "clash-lan")
	if pvc.ResourceVersion != foreign.ResourceVersion && len(pvc.OwnerReferences) > 0 {
		t.Fatalf("foreign claim modified: %+v", pvc.ObjectMeta)
	}
	if len(pvc.OwnerReferences) != 0 || len(nad.OwnerReferences) != 0 || nad.Spec.Config != foreignNAD.Spec.Config {
		t.Fatal("foreign objects were adopted or changed")
	}
	if getObject(t, &kubevirtv1.VirtualMachine{}, ns, "clash-vm") {
		t.Fatal("VM created despite the conflict")
	}
	expectEvent(t, ns, "clash", vmv1alpha1.ReasonNameConflict)
}

// TestMissingNADWaitsThenProceeds: a network naming an absent NAD is a
// condition; creating the NAD lets the profile run, without a restart.
func TestMissingNADWaitsThenProceeds(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("late-nad", ns, func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].NADName = "corp-net" }))
	p := waitForCondition(t, ns, "late-nad", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonNADMissing)
	expectEvent(t, ns, "late-nad", vmv1alpha1.ReasonNADMissing)
	if p.Status.Phase != vmv1alpha1.PhasePending || getObject(t, &kubevirtv1.VirtualMachine{}, ns, "late-nad-vm") {
		t.Fatalf("should wait without a VM: %s", observe.Describe(p))
	}
	create(t, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "corp-net", Namespace: ns},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-lan"}`}})
	waitForPhase(t, ns, "late-nad", vmv1alpha1.PhaseRunning)
}

// TestStaticIPAlreadyUsedOnTheSameNetwork: the younger profile reports the
// conflict and gets no VM; removing the older one lets it proceed.
func TestStaticIPAlreadyUsedOnTheSameNetwork(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("first", ns, withStaticIP("10.1.0.5/24")))
	waitForPhase(t, ns, "first", vmv1alpha1.PhaseRunning)
	create(t, profile("second", ns, withStaticIP("10.1.0.5/24")))
	p := waitForCondition(t, ns, "second", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonStaticIPConflict)
	if p.Status.Phase != vmv1alpha1.PhaseError || getObject(t, &kubevirtv1.VirtualMachine{}, ns, "second-vm") {
		t.Fatalf("second profile: %s", observe.Describe(p))
	}
	expectEvent(t, ns, "second", vmv1alpha1.ReasonStaticIPConflict)
	if err := cluster.Client.Delete(context.Background(), getProfile(t, ns, "first")); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "second", vmv1alpha1.PhaseRunning)
}

// TestMissingStorageClassHoldsTheVM: a disk in a class that does not exist
// is reported, and the profile proceeds once the class appears.
func TestMissingStorageClassHoldsTheVM(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("classless", ns, withDisk("data", "1Gi", "not-yet", "")))
	p := waitForCondition(t, ns, "classless", vmv1alpha1.ConditionVolumesBound, metav1.ConditionFalse, vmv1alpha1.ReasonStorageClassMissing)
	expectEvent(t, ns, "classless", vmv1alpha1.ReasonStorageClassMissing)
	if getObject(t, &kubevirtv1.VirtualMachine{}, ns, "classless-vm") || getObject(t, &corev1.PersistentVolumeClaim{}, ns, "classless-data") {
		t.Fatalf("nothing should be created for a disk whose class is missing: %s", observe.Describe(p))
	}
	create(t, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "not-yet"}, Provisioner: "example.com/csi"})
	t.Cleanup(func() {
		_ = cluster.Client.Delete(context.Background(), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "not-yet"}})
	})
	waitForPhase(t, ns, "classless", vmv1alpha1.PhaseRunning)
}

// TestRemovedNetworkLosesItsAttachment: removing a network from the profile
// removes it from the VM and deletes the attachment the operator made for it.
func TestRemovedNetworkLosesItsAttachment(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("shrink", ns, func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.Networks = append(p.Spec.Networks, vmv1alpha1.NetworkConfig{Name: "extra", Type: vmv1alpha1.NetworkTypeMacvlan})
	}))
	waitForPhase(t, ns, "shrink", vmv1alpha1.PhaseRunning)
	if !getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "shrink-extra") {
		t.Fatal("attachment of the extra network missing")
	}
	p := getProfile(t, ns, "shrink")
	p.Spec.Networks = p.Spec.Networks[:1]
	if err := cluster.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "extra attachment deleted and VM updated", func() (bool, string) {
		var vm kubevirtv1.VirtualMachine
		getObject(t, &vm, ns, "shrink-vm")
		return !getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "shrink-extra") && len(vm.Spec.Template.Spec.Networks) == 1,
			"attachment or VM network still there"
	})
	expectEvent(t, ns, "shrink", vmv1alpha1.EventDeleted)
}
