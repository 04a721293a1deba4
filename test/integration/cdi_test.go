package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// switchCDI sets (value non-nil) or removes (nil) a label on a
// namespace: the simulated CDI's switches are namespace labels.
func switchCDI(t *testing.T, namespace, key string, value *string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]*string{key: value}}})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := cluster.Client.Patch(context.Background(), ns, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("label namespace %s %s: %v", namespace, key, err)
	}
}

// TestRetriedImportWarns: CDI keeps an import that fails on a pull error
// in ImportScheduled and retries it forever, Running=False with reason
// ImagePullFailed and a growing restartCount. The profile says so with
// CDI's message and a Warning, instead of "importing" forever, is an
// Error while KubeVirt reports DataVolumeError, and runs once an import
// succeeds.
func TestRetriedImportWarns(t *testing.T) {
	ns := newNamespace(t)
	switchCDI(t, ns, simulator.LabelCDIImportError, ptr.To("ImagePullFailed"))
	create(t, profile("pull", ns, withImage("registry.local/missing:1"), withDisk("system", "10Gi", "huamei-sc-ssd", "")))
	p := waitForCondition(t, ns, "pull", vmv1alpha1.ConditionVolumesBound, metav1.ConditionFalse, vmv1alpha1.ReasonImportRetrying)
	volumes := conditionOf(p, vmv1alpha1.ConditionVolumesBound)
	if !strings.Contains(volumes.Message, "failed to pull image: docker://registry.local/missing:1") {
		t.Fatalf("VolumesBound does not carry CDI's message: %q", volumes.Message)
	}
	// KubeVirt reads the retrying import as DataVolumeError and does not
	// start the VM: Ready says what VolumesBound says, phase Error.
	p = waitForPhase(t, ns, "pull", vmv1alpha1.PhaseError)
	if ready := conditionOf(p, vmv1alpha1.ConditionReady); ready.Reason != vmv1alpha1.ReasonImportRetrying || ready.Message != volumes.Message {
		t.Fatalf("Ready %s %q while CDI retries, want what VolumesBound says: %s", ready.Reason, ready.Message, observe.Describe(p))
	}
	expectEvent(t, ns, "pull", vmv1alpha1.ReasonImportRetrying)
	observe.Eventually(t, 30*time.Second, "importer restarted", func() (bool, string) {
		var dv cdiv1.DataVolume
		getObject(t, &dv, ns, "pull-system")
		return dv.Status.RestartCount >= 1 && dv.Status.Phase == cdiv1.ImportScheduled, string(dv.Status.Phase)
	})
	switchCDI(t, ns, simulator.LabelCDIImportError, nil)
	waitForPhase(t, ns, "pull", vmv1alpha1.PhaseRunning)
}

// TestMissingClaimIsNotPlacement: while CDI has not made the claim yet,
// KubeVirt keeps the instance Pending with PodScheduled=False ("PVC ...
// does not exist, waiting for it to appear"). That is a volumes wait, not
// a node shortage.
func TestMissingClaimIsNotPlacement(t *testing.T) {
	ns := newNamespace(t)
	switchCDI(t, ns, simulator.LabelCDIHoldClaims, ptr.To("true"))
	create(t, profile("slowcdi", ns, withImage("registry.local/os:1"), withDisk("system", "10Gi", "huamei-sc-ssd", "")))
	p := waitForCondition(t, ns, "slowcdi", vmv1alpha1.ConditionScheduled, metav1.ConditionFalse, vmv1alpha1.ReasonVolumesPending)
	if c := conditionOf(p, vmv1alpha1.ConditionScheduled); !strings.Contains(c.Message, "slowcdi-system does not exist") {
		t.Fatalf("Scheduled does not carry KubeVirt's message: %q", c.Message)
	}
	switchCDI(t, ns, simulator.LabelCDIHoldClaims, nil)
	waitForPhase(t, ns, "slowcdi", vmv1alpha1.PhaseRunning)
	waitForCondition(t, ns, "slowcdi", vmv1alpha1.ConditionScheduled, metav1.ConditionTrue, vmv1alpha1.ReasonNodesEligible)
}

// TestSmallGrowthPastTheOverhead: CDI inflates the claim of a 1Gi image
// disk by its 6 % filesystem overhead; growing the disk to 1040Mi (less
// than the inflated request) still grows the claim, keeping the overhead.
func TestSmallGrowthPastTheOverhead(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	switchCDI(t, ns, simulator.LabelCDIFilesystemOverhead, ptr.To("0.06"))
	create(t, profile("small", ns, withImage("registry.local/os:1"), withDisk("system", "1Gi", "huamei-sc-ssd", "")))
	waitForPhase(t, ns, "small", vmv1alpha1.PhaseRunning)
	var claim corev1.PersistentVolumeClaim
	getObject(t, &claim, ns, "small-system")
	inflated := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if inflated.Cmp(resource.MustParse("1040Mi")) <= 0 {
		t.Fatalf("the stand-in did not inflate the claim: request %s", inflated.String())
	}
	p := getProfile(t, ns, "small")
	p.Spec.Disks[0].Size = "1040Mi"
	if err := cluster.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "claim grown past its inflated request", func() (bool, string) {
		getObject(t, &claim, ns, "small-system")
		capacity := claim.Status.Capacity[corev1.ResourceStorage]
		return capacity.Cmp(inflated) > 0 && claim.Annotations[vmv1alpha1.AnnotationDiskSize] == "1040Mi", capacity.String()
	})
	// 1040Mi with the same 6 % headroom, not 1040Mi (below the request,
	// which the apiserver would refuse as a shrink).
	if got := claim.Spec.Resources.Requests[corev1.ResourceStorage]; got.Value() != 1155950183 {
		t.Fatalf("request %d, want 1155950183", got.Value())
	}
	expectEvent(t, ns, "small", vmv1alpha1.EventResizing)
}

func conditionOf(p *vmv1alpha1.VirtualMachineProfile, conditionType string) metav1.Condition {
	for _, c := range p.Status.Conditions {
		if c.Type == conditionType {
			return c
		}
	}
	return metav1.Condition{}
}

// TestDataVolumeErrorIsAnError: CDI retries an import that fails with
// reason Error; KubeVirt reads the DataVolume as DataVolumeError and does
// not start the VM. The profile is an Error whose Ready says what
// VolumesBound says (ImportRetrying, CDI's message), with a Warning.
func TestDataVolumeErrorIsAnError(t *testing.T) {
	ns := newNamespace(t)
	switchCDI(t, ns, simulator.LabelCDIImportError, ptr.To("Error"))
	create(t, profile("dverror", ns, withImage("registry.local/private:1"), withDisk("system", "10Gi", "huamei-sc-ssd", "")))
	const cdiMessage = "Unable to process data: docker://registry.local/private:1: unexpected status code 401 Unauthorized"
	observe.Eventually(t, 30*time.Second, "VM dverror-vm DataVolumeError", func() (bool, string) {
		var vm kubevirtv1.VirtualMachine
		getObject(t, &vm, ns, "dverror-vm")
		return vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusDataVolumeError, string(vm.Status.PrintableStatus)
	})
	p := waitForPhase(t, ns, "dverror", vmv1alpha1.PhaseError)
	ready, volumes := conditionOf(p, vmv1alpha1.ConditionReady), conditionOf(p, vmv1alpha1.ConditionVolumesBound)
	if ready.Status != metav1.ConditionFalse || ready.Reason != vmv1alpha1.ReasonImportRetrying || !strings.Contains(ready.Message, cdiMessage) {
		t.Fatalf("Ready %s %s %q, want False ImportRetrying with CDI's message", ready.Status, ready.Reason, ready.Message)
	}
	if ready.Message != volumes.Message {
		t.Fatalf("Ready %q should say what VolumesBound says: %q", ready.Message, volumes.Message)
	}
	expectEvent(t, ns, "dverror", vmv1alpha1.ReasonImportRetrying)

	// Retries do not start the VM: KubeVirt creates no launcher pod while
	// a DataVolume is not ready (virt-controller vmi/datavolumes.go).
	observe.Eventually(t, 30*time.Second, "importer restarted twice", func() (bool, string) {
		var dv cdiv1.DataVolume
		getObject(t, &dv, ns, "dverror-system")
		return dv.Status.RestartCount >= 2, fmt.Sprintf("%s restartCount %d", dv.Status.Phase, dv.Status.RestartCount)
	})
	if vm := getVM(t, ns, "dverror-vm"); vm.Status.PrintableStatus != kubevirtv1.VirtualMachineStatusDataVolumeError {
		t.Fatalf("printableStatus %s while the import retries, want DataVolumeError", vm.Status.PrintableStatus)
	}
	var vmi kubevirtv1.VirtualMachineInstance
	if getObject(t, &vmi, ns, "dverror-vm") && vmi.Status.Phase == kubevirtv1.Running {
		t.Fatal("the instance runs while its DataVolume's import retries")
	}
	if p = getProfile(t, ns, "dverror"); p.Status.Phase != vmv1alpha1.PhaseError {
		t.Fatalf("phase %s while the import retries, want Error: %s", p.Status.Phase, observe.Describe(p))
	}

	switchCDI(t, ns, simulator.LabelCDIImportError, nil)
	waitForPhase(t, ns, "dverror", vmv1alpha1.PhaseRunning)
}
