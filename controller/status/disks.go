package status

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// WorstCheck keeps the most serious check and lists all messages.
func WorstCheck(checks []Check) Check {
	worst := checks[0]
	var messages []string
	for _, check := range checks {
		messages = append(messages, check.Message)
		if (check.Fatal && !worst.Fatal) || (check.Holds && !worst.Holds && check.Fatal == worst.Fatal) {
			worst = check
		}
	}
	worst.Message = strings.Join(messages, "; ")
	return worst
}

// DiskCheck says whether a disk is ready and, if not, why, from its
// DataVolume (nil: none; importing: the disk imports an image not yet
// detached from it), its claim (nil: not made yet) and its StorageClass
// (nil: the default class).
func DiskCheck(disk *vmv1alpha1.DiskConfig, importing bool, dv *cdiv1.DataVolume, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) *Check {
	pending := func(reason, format string, args ...any) *Check {
		return &Check{Failed: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if importing && dv != nil && dv.Status.Phase == cdiv1.Failed {
		check := Problem(vmv1alpha1.ReasonImportFailed, "disk %s: importing the image failed", disk.Name)
		return &check
	}
	if claim == nil {
		return pending(vmv1alpha1.ReasonVolumesPending, "disk %s: waiting for its claim to be created", disk.Name)
	}
	if claim.Status.Phase != corev1.ClaimBound {
		if class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
			return pending(vmv1alpha1.ReasonVolumesPending, "disk %s: claim waits for its first consumer (the VM) to bind", disk.Name)
		}
		return pending(vmv1alpha1.ReasonVolumesPending, "disk %s: claim is %s", disk.Name, strings.ToLower(string(claim.Status.Phase)))
	}
	if importing && dv != nil && dv.Status.Phase != cdiv1.Succeeded {
		return pending(vmv1alpha1.ReasonImportInProgress, "disk %s: importing image (%s %s)", disk.Name, dv.Status.Phase, dv.Status.Progress)
	}
	return nil
}
