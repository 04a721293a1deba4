package status

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func TestDiskCheck(t *testing.T) {
	disk := &vmv1alpha1.DiskConfig{Name: "root"}
	claim := func(phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "web-root"}, Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
	}
	dv := func(phase cdiv1.DataVolumePhase) *cdiv1.DataVolume {
		return &cdiv1.DataVolume{Status: cdiv1.DataVolumeStatus{Phase: phase, Progress: "42.0%"}}
	}
	stopped := func(phase cdiv1.DataVolumePhase, reason string) *cdiv1.DataVolume {
		d := dv(phase)
		d.Status.RestartCount = 3
		d.Status.Conditions = []cdiv1.DataVolumeCondition{{Type: cdiv1.DataVolumeRunning, Status: corev1.ConditionFalse, Reason: reason, Message: "failed to pull image: x"}}
		return d
	}
	lazy := &storagev1.StorageClass{VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}
	for _, tc := range []struct {
		name      string
		importing bool
		dv        *cdiv1.DataVolume
		claim     *corev1.PersistentVolumeClaim
		class     *storagev1.StorageClass
		want      *Check // nil: ready
	}{
		{"bound blank disk", false, nil, claim(corev1.ClaimBound), nil, nil},
		{"no claim yet", false, nil, nil, nil,
			&Check{Failed: true, Reason: vmv1alpha1.ReasonVolumesPending, Message: "disk root: waiting for its claim to be created"}},
		{"claim pending", false, nil, claim(corev1.ClaimPending), nil,
			&Check{Failed: true, Reason: vmv1alpha1.ReasonVolumesPending, Message: "disk root: claim is pending"}},
		{"claim waits for its first consumer", false, nil, claim(corev1.ClaimPending), lazy,
			&Check{Failed: true, Reason: vmv1alpha1.ReasonVolumesPending, Message: "disk root: claim waits for its first consumer (the VM) to bind"}},
		{"import failed, even before the claim", true, dv(cdiv1.Failed), nil, nil,
			&Check{Failed: true, Fatal: true, Holds: true, Reason: vmv1alpha1.ReasonImportFailed, Message: "disk root: importing the image failed"}},
		{"importing into a bound claim", true, dv(cdiv1.ImportInProgress), claim(corev1.ClaimBound), nil,
			&Check{Failed: true, Reason: vmv1alpha1.ReasonImportInProgress, Message: "disk root: importing image (ImportInProgress 42.0%)"}},
		{"import done", true, dv(cdiv1.Succeeded), claim(corev1.ClaimBound), nil, nil},
		{"import retried after an error", true, stopped(cdiv1.ImportInProgress, "Error"), claim(corev1.ClaimBound), nil,
			&Check{Failed: true, Warn: true, Reason: vmv1alpha1.ReasonImportRetrying,
				Message: "disk root: importing the image fails and CDI retries it (Error): failed to pull image: x"}},
		{"pull retried, claim still pending (populators)", true, stopped(cdiv1.ImportScheduled, "ImagePullFailed"), claim(corev1.ClaimPending), nil,
			&Check{Failed: true, Warn: true, Reason: vmv1alpha1.ReasonImportRetrying,
				Message: "disk root: importing the image fails and CDI retries it (ImagePullFailed): failed to pull image: x"}},
		{"importer not scheduled yet is no error", true, stopped(cdiv1.ImportInProgress, "Unschedulable"), claim(corev1.ClaimBound), nil,
			&Check{Failed: true, Reason: vmv1alpha1.ReasonImportInProgress, Message: "disk root: importing image (ImportInProgress 42.0%)"}},
		{"a stale error condition on a finished import", true, stopped(cdiv1.Succeeded, "Error"), claim(corev1.ClaimBound), nil, nil},
		{"a detached import is not importing", false, dv(cdiv1.Failed), claim(corev1.ClaimBound), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DiskCheck(disk, tc.importing, tc.dv, tc.claim, tc.class)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got != nil && got.Holds && !got.Fatal {
				t.Fatalf("a pending disk must not hold the VM (WaitForFirstConsumer binds only once it runs): %+v", got)
			}
		})
	}
}

// TestWorstCheck keeps the most serious check (fatal over holding over
// pending) and every message, in order.
func TestWorstCheck(t *testing.T) {
	pending := Check{Failed: true, Reason: vmv1alpha1.ReasonVolumesPending, Message: "a pending"}
	wait := Wait(vmv1alpha1.ReasonStorageClassMissing, "b missing class")
	fatal := Problem(vmv1alpha1.ReasonImportFailed, "c failed")
	got := WorstCheck([]Check{pending, wait, fatal})
	if got.Reason != vmv1alpha1.ReasonImportFailed || !got.Fatal || got.Message != "a pending; b missing class; c failed" {
		t.Fatalf("got %+v", got)
	}
	got = WorstCheck([]Check{pending, wait})
	if got.Reason != vmv1alpha1.ReasonStorageClassMissing || got.Message != "a pending; b missing class" {
		t.Fatalf("got %+v", got)
	}
	retrying := Check{Failed: true, Warn: true, Reason: vmv1alpha1.ReasonImportRetrying, Message: "d retrying"}
	got = WorstCheck([]Check{pending, retrying})
	if got.Reason != vmv1alpha1.ReasonImportRetrying || got.Holds {
		t.Fatalf("a retried import outranks a pending claim and holds nothing: %+v", got)
	}
	got = WorstCheck([]Check{retrying, wait})
	if got.Reason != vmv1alpha1.ReasonStorageClassMissing {
		t.Fatalf("a holding wait outranks a retried import: %+v", got)
	}
	got = WorstCheck([]Check{pending})
	if got != pending {
		t.Fatalf("one check comes back as it is: %+v", got)
	}
}

// TestRetriedImportWarns: an import CDI retries on an error warns (CDI's
// message in Ready and the event) without holding the VM or setting the
// phase to Error, since CDI may still succeed.
func TestRetriedImportWarns(t *testing.T) {
	o := &Observed{Volumes: Check{Failed: true, Warn: true, Reason: vmv1alpha1.ReasonImportRetrying, Message: "disk root: ... failed to pull image"}}
	if !Warns(o) || o.Holds() || Phase(o) == vmv1alpha1.PhaseError {
		t.Fatalf("warns %v holds %v phase %s", Warns(o), o.Holds(), Phase(o))
	}
	if ready := Ready(o); ready.Reason != vmv1alpha1.ReasonImportRetrying || ready.Message != o.Volumes.Message {
		t.Fatalf("ready %+v", ready)
	}
}

// TestScheduledMissingClaimIsVolumes: KubeVirt's PodScheduled=False while
// CDI has not made the claim yet is a volumes wait, not a placement failure.
func TestScheduledMissingClaimIsVolumes(t *testing.T) {
	for _, tc := range []struct{ message, reason string }{
		{"PVC ns/web-system does not exist, waiting for it to appear", vmv1alpha1.ReasonVolumesPending},
		{"failed to render launch manifest: didn't find PVC web-system", vmv1alpha1.ReasonVolumesPending},
		{"0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", vmv1alpha1.ReasonNoEligibleNodes},
	} {
		waiting := &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: kubevirtv1.Pending,
			Conditions: []kubevirtv1.VirtualMachineInstanceCondition{{Type: "PodScheduled", Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: tc.message}}}}
		c := Scheduled(&Observed{VMI: waiting, Placement: &vmv1alpha1.PlacementStatus{EligibleNodes: 2}})
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || c.Message != tc.message {
			t.Errorf("%q: got %+v, want False %s", tc.message, c, tc.reason)
		}
	}
}
