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
		if severity(check) > severity(worst) {
			worst = check
		}
	}
	worst.Message = strings.Join(messages, "; ")
	return worst
}

// severity orders checks: one that needs the user and holds the VM, one
// that holds it, one that warns, then plain waits.
func severity(check Check) int {
	rank := 0
	if check.Fatal {
		rank += 4
	}
	if check.Holds {
		rank += 2
	}
	if check.Warn {
		rank++
	}
	return rank
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
	if importing && dv != nil {
		if check := importRetrying(disk, dv); check != nil {
			return check
		}
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

// importRetrying reads a DataVolume whose importer stopped on an error CDI
// does not count as fatal: CDI keeps the phase (ImportScheduled,
// ImportInProgress), restarts the importer and sets Running=False with
// reason Error or ImagePullFailed (CDI pkg/controller/util.go
// setAnnotationsFromPodWithPrefix, pkg/controller/datavolume/conditions.go);
// KubeVirt reads the same condition as DataVolumeError (pkg/storage/types/dv.go
// HasDataVolumeErrors). Such an import may never finish: it warns with
// CDI's message, but does not hold the VM, which KubeVirt starts once an
// import succeeds. The message leaves out restartCount, which grows with
// every retry: each change would be a status write and a Warning.
func importRetrying(disk *vmv1alpha1.DiskConfig, dv *cdiv1.DataVolume) *Check {
	if dv.Status.Phase == cdiv1.Succeeded || dv.Status.Phase == cdiv1.Failed {
		return nil
	}
	for _, c := range dv.Status.Conditions {
		if c.Type != cdiv1.DataVolumeRunning || c.Status != corev1.ConditionFalse || (c.Reason != "Error" && c.Reason != "ImagePullFailed") {
			continue
		}
		message := c.Message
		if message == "" {
			message = "no message"
		}
		return &Check{Failed: true, Warn: true, Reason: vmv1alpha1.ReasonImportRetrying,
			Message: fmt.Sprintf("disk %s: importing the image fails and CDI retries it (%s): %s", disk.Name, c.Reason, message)}
	}
	return nil
}
