package status

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
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
	got = WorstCheck([]Check{pending})
	if got != pending {
		t.Fatalf("one check comes back as it is: %+v", got)
	}
}
