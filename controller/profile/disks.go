package profile

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// diskState is what one disk's reconcile found.
type diskState struct {
	status vmv1alpha1.VolumeStatus
	check  *status.Check // nil when the disk is bound and imported
}

// reconcileDisks creates each disk's DataVolume (image) or claim (blank),
// grows claims whose size grew, and reports each volume. Pending volumes do
// not hold the VM: WaitForFirstConsumer classes bind only once it runs.
func (r *Reconciler) reconcileDisks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	observed.Volumes = status.Pass(vmv1alpha1.ReasonVolumesBound, fmt.Sprintf("%d volume(s) bound", len(profile.Spec.Disks)))
	var checks []status.Check
	for i := range profile.Spec.Disks {
		state, err := r.reconcileDisk(ctx, profile, &profile.Spec.Disks[i])
		if err != nil {
			return err
		}
		observed.VolumeStatuses = append(observed.VolumeStatuses, state.status)
		if state.check != nil {
			checks = append(checks, *state.check)
		}
	}
	if len(checks) > 0 {
		observed.Volumes = worstCheck(checks)
		return nil
	}
	var resizeMessages []string
	for _, volume := range observed.VolumeStatuses {
		if volume.Message != "" {
			resizeMessages = append(resizeMessages, "disk "+volume.Name+": "+volume.Message)
		}
	}
	if len(resizeMessages) > 0 {
		observed.Volumes = status.Pass(vmv1alpha1.ReasonResizeNotSupported, strings.Join(resizeMessages, "; "))
	}
	return nil
}

// previousVolumeMessage is the message a volume had in the stored status.
func previousVolumeMessage(profile *vmv1alpha1.VirtualMachineProfile, disk string) string {
	for _, volume := range profile.Status.Volumes {
		if volume.Name == disk {
			return volume.Message
		}
	}
	return ""
}

// worstCheck keeps the most serious check and lists all messages.
func worstCheck(checks []status.Check) status.Check {
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

func (r *Reconciler) reconcileDisk(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig) (diskState, error) {
	name := vmv1alpha1.VolumeName(profile.Name, disk.Name)
	state := diskState{status: vmv1alpha1.VolumeStatus{Name: disk.Name, PVCName: name}}
	size, err := resource.ParseQuantity(disk.Size)
	if err != nil {
		return state, fmt.Errorf("disk %s: size %q: %w", disk.Name, disk.Size, err)
	}
	class, check, err := r.storageClass(ctx, disk)
	if err != nil || check != nil {
		state.check = check
		return state, err
	}
	image := profile.Spec.DiskImage(disk)
	var want client.Object = desired.PVC(profile, disk, size)
	if image != "" {
		if !r.Deps.CDI {
			wait := status.Wait(vmv1alpha1.ReasonDependencyMissing,
				"disk %s imports an image, which needs CDI (cdi.kubevirt.io/v1beta1), and CDI is not installed", disk.Name)
			state.check = &wait
			return state, nil
		}
		want = desired.DataVolume(profile, disk, image, size)
	}
	if _, conflict, err := r.ensureCreated(ctx, profile, want); err != nil || conflict != nil {
		state.check = conflict
		return state, err
	}
	return r.observeDisk(ctx, profile, disk, class, size, image != "", state)
}

// storageClass looks up the disk's class; a missing class holds the VM with
// a condition (the claim would never bind).
func (r *Reconciler) storageClass(ctx context.Context, disk *vmv1alpha1.DiskConfig) (*storagev1.StorageClass, *status.Check, error) {
	if disk.StorageClassName == "" {
		return nil, nil, nil
	}
	var class storagev1.StorageClass
	err := r.Client.Get(ctx, client.ObjectKey{Name: disk.StorageClassName}, &class)
	if apierrors.IsNotFound(err) {
		check := status.Wait(vmv1alpha1.ReasonStorageClassMissing, "disk %s: StorageClass %s does not exist", disk.Name, disk.StorageClassName)
		return nil, &check, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return &class, nil, nil
}

// observeDisk reads the claim (and DataVolume) behind a disk into its status,
// and grows the claim when the disk's size grew.
func (r *Reconciler) observeDisk(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig,
	class *storagev1.StorageClass, size resource.Quantity, imported bool, state diskState) (diskState, error) {
	key := client.ObjectKey{Namespace: profile.Namespace, Name: state.status.PVCName}
	var dv cdiv1.DataVolume
	if imported {
		if err := r.Client.Get(ctx, key, &dv); client.IgnoreNotFound(err) != nil {
			return state, err
		}
		state.status.Phase, state.status.Progress = string(dv.Status.Phase), string(dv.Status.Progress)
	}
	var claim corev1.PersistentVolumeClaim
	err := r.Client.Get(ctx, key, &claim)
	if client.IgnoreNotFound(err) != nil {
		return state, err
	}
	claimFound := err == nil
	if claimFound {
		state.status.Bound = claim.Status.Phase == corev1.ClaimBound
		if !imported {
			state.status.Phase = string(claim.Status.Phase)
		}
		if capacity, ok := claim.Status.Capacity[corev1.ResourceStorage]; ok {
			state.status.Capacity = capacity.String()
		}
	}
	state.check = diskCheck(disk, imported, &dv, claimFound, &claim, class)
	if claimFound && state.check == nil {
		resize, err := r.growClaim(ctx, profile, &claim, class, size)
		if err != nil {
			return state, err
		}
		state.status.Message = resize
	}
	return state, nil
}

// diskCheck says whether a disk is ready and, if not, why.
func diskCheck(disk *vmv1alpha1.DiskConfig, imported bool, dv *cdiv1.DataVolume, claimFound bool,
	claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) *status.Check {
	pending := func(reason, format string, args ...any) *status.Check {
		return &status.Check{Failed: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if imported && dv.Status.Phase == cdiv1.Failed {
		check := status.Problem(vmv1alpha1.ReasonImportFailed, "disk %s: importing the image failed", disk.Name)
		return &check
	}
	if !claimFound {
		return pending(vmv1alpha1.ReasonVolumesPending, "disk %s: waiting for its claim to be created", disk.Name)
	}
	if claim.Status.Phase != corev1.ClaimBound {
		if class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
			return pending(vmv1alpha1.ReasonVolumesPending, "disk %s: claim waits for its first consumer (the VM) to bind", disk.Name)
		}
		return pending(vmv1alpha1.ReasonVolumesPending, "disk %s: claim is %s", disk.Name, strings.ToLower(string(claim.Status.Phase)))
	}
	if imported && dv.Status.Phase != cdiv1.Succeeded {
		return pending(vmv1alpha1.ReasonImportInProgress, "disk %s: importing image (%s %s)", disk.Name, dv.Status.Phase, dv.Status.Progress)
	}
	return nil
}

// growClaim raises a bound claim's request to the disk's size when the class
// allows expansion, and otherwise says why it cannot. It returns the message
// for the volume's status (empty when nothing is pending).
func (r *Reconciler) growClaim(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, claim *corev1.PersistentVolumeClaim,
	class *storagev1.StorageClass, size resource.Quantity) (string, error) {
	current := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if size.Cmp(current) <= 0 {
		return "", nil
	}
	if class == nil || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
		className := "the default class"
		if class != nil {
			className = "StorageClass " + class.Name
		}
		message := fmt.Sprintf("cannot grow from %s to %s: %s does not allow volume expansion", current.String(), size.String(), className)
		// Once per change, not once per reconcile: an event is a write.
		if previousVolumeMessage(profile, claim.Labels[desired.LabelDisk]) != message {
			r.event(profile, "Warning", vmv1alpha1.ReasonResizeNotSupported, "claim %s: %s", claim.Name, message)
		}
		return message, nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"resources": map[string]any{
		"requests": map[string]string{string(corev1.ResourceStorage): size.String()},
	}}})
	if err != nil {
		return "", err
	}
	if err := r.Client.Patch(ctx, claim, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		return "", fmt.Errorf("grow claim %s: %w", claim.Name, err)
	}
	r.event(profile, "Normal", "Resizing", "growing claim %s from %s to %s", claim.Name, current.String(), size.String())
	return "", nil
}
