package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestStorageClassesAndLargeDisks is the seed's storage scenario: disks in
// different classes, one of 2Ti, each claim in its class and bound.
func TestStorageClassesAndLargeDisks(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("big", ns, withImage("registry.local/os:1"),
		withDisk("system", "80Gi", "huamei-sc-ssd", ""), withDisk("archive", "2Ti", "huamei-sc-hdd", "")))
	p := waitForPhase(t, ns, "big", vmv1alpha1.PhaseRunning)
	var archive corev1.PersistentVolumeClaim
	getObject(t, &archive, ns, "big-archive")
	if *archive.Spec.StorageClassName != "huamei-sc-hdd" || archive.Status.Capacity.Storage().String() != "2Ti" {
		t.Fatalf("archive claim: class %s capacity %v", *archive.Spec.StorageClassName, archive.Status.Capacity)
	}
	if p.Status.Volumes[1].Capacity != "2Ti" || !p.Status.Volumes[1].Bound {
		t.Fatalf("volume status: %+v", p.Status.Volumes)
	}
}

// TestWaitForFirstConsumerDoesNotDeadlock: the VM is created while the claim
// is still unbound, and the claim binds once the VM is scheduled.
func TestWaitForFirstConsumerDoesNotDeadlock(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("local", ns, withImage("registry.local/os:1"), withDisk("system", "10Gi", "local-wffc", "")))
	waitForPhase(t, ns, "local", vmv1alpha1.PhaseRunning)
	var claim corev1.PersistentVolumeClaim
	getObject(t, &claim, ns, "local-system")
	if claim.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim %s", claim.Status.Phase)
	}
}

// TestDiskGrowth: a grown disk expands its claim when the class allows it,
// and says so when it does not.
func TestDiskGrowth(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, profile("grow", ns, withDisk("fast", "10Gi", "huamei-sc-ssd", ""), withDisk("slow", "10Gi", "huamei-sc-hdd", "")))
	waitForPhase(t, ns, "grow", vmv1alpha1.PhaseRunning)
	p := getProfile(t, ns, "grow")
	p.Spec.Disks[0].Size = "20Gi"
	p.Spec.Disks[1].Size = "20Gi"
	if err := cluster.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "fast claim grown", func() (bool, string) {
		var claim corev1.PersistentVolumeClaim
		getObject(t, &claim, ns, "grow-fast")
		return claim.Status.Capacity.Storage().String() == "20Gi", claim.Status.Capacity.Storage().String()
	})
	p = waitForCondition(t, ns, "grow", vmv1alpha1.ConditionVolumesBound, metav1.ConditionTrue, vmv1alpha1.ReasonResizeNotSupported)
	var slow corev1.PersistentVolumeClaim
	getObject(t, &slow, ns, "grow-slow")
	if slow.Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Fatalf("claim of a non-expandable class was changed: %v", slow.Spec.Resources.Requests)
	}
	if msg := p.Status.Volumes[1].Message; !strings.Contains(msg, "does not allow volume expansion") {
		t.Fatalf("slow volume message: %q", msg)
	}
	expectEvent(t, ns, "grow", vmv1alpha1.EventResizing)
	expectEvent(t, ns, "grow", vmv1alpha1.ReasonResizeNotSupported)
}

// TestSpecChangesPropagate: CPU changes reach the VM template and KubeVirt's
// RestartRequired shows on the profile; autoStart false stops the VM.
func TestSpecChangesPropagate(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, profile("tune", ns))
	waitForPhase(t, ns, "tune", vmv1alpha1.PhaseRunning)
	p := getProfile(t, ns, "tune")
	p.Spec.CPU = 2
	if err := cluster.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, ns, "tune", "RestartRequired", metav1.ConditionTrue, vmv1alpha1.ReasonRestartRequired)
	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "tune-vm")
	if vm.Spec.Template.Spec.Domain.CPU.Cores != 2 {
		t.Fatalf("VM template CPU: %d", vm.Spec.Template.Spec.Domain.CPU.Cores)
	}
	p = getProfile(t, ns, "tune")
	p.Spec.StartStrategy = &vmv1alpha1.StartStrategySpec{AutoStart: new(bool)}
	if err := cluster.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "tune", vmv1alpha1.PhaseStopped)
	getObject(t, &vm, ns, "tune-vm")
	if *vm.Spec.RunStrategy != kubevirtv1.RunStrategyHalted {
		t.Fatalf("run strategy %s", *vm.Spec.RunStrategy)
	}
}
