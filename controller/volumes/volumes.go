// Package volumes reconciles a profile's disks: a DataVolume (image) or
// claim (blank) for each, owned as its retain policy says, grown when its
// size grows, detached from its DataVolume once a retained import is done,
// and released when the disk leaves the spec. It reports each volume into
// the profile's observed status.
package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/apply"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/owner"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// Reconciler reconciles the disks of one profile at a time; the profile
// reconciler makes one per reconcile.
type Reconciler struct {
	Client client.Client
	// APIReader reads the profile from the apiserver before a volume left
	// without owner is adopted (owner.LiveForAdoption).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// CDI says whether DataVolumes are served (images need them).
	CDI bool
}

// event records an event on the profile about related (see the profile
// reconciler's event: the related object keeps event series apart).
func (r *Reconciler) event(profile *vmv1alpha1.VirtualMachineProfile, related client.Object, eventType, reason, format string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(profile, related, eventType, reason, reason, format, args...)
}

// diskState is what one disk's reconcile found.
type diskState struct {
	status vmv1alpha1.VolumeStatus
	check  *status.Check // nil when the disk is bound and imported
}

// volume is what exists of one disk: its DataVolume (image disks, until a
// retained import is detached) and its claim.
type volume struct {
	dv    *cdiv1.DataVolume
	claim *corev1.PersistentVolumeClaim
}

// top is the object that stands for the disk: the DataVolume while there
// is one, else the claim.
func (v volume) top() client.Object {
	if v.dv != nil {
		return v.dv
	}
	if v.claim != nil {
		return v.claim
	}
	return nil
}

// Reconcile creates each disk's DataVolume (image) or claim (blank),
// keeps its owner references in line with its retain policy, grows claims
// whose size grew, and reports each volume. Pending volumes do not hold the
// VM: WaitForFirstConsumer classes bind only once it runs.
func (r *Reconciler) Reconcile(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	observed.Volumes = status.Pass(vmv1alpha1.ReasonVolumesBound, fmt.Sprintf("%d volume(s) bound", len(profile.Spec.Disks)))
	var checks []status.Check
	var errs []error
	for i := range profile.Spec.Disks {
		state, err := r.reconcileDisk(ctx, profile, &profile.Spec.Disks[i])
		if err != nil {
			state.status.Message = "could not be checked: " + err.Error()
			errs = append(errs, fmt.Errorf("disk %s: %w", profile.Spec.Disks[i].Name, err))
		}
		observed.VolumeStatuses = append(observed.VolumeStatuses, state.status)
		if state.check != nil {
			checks = append(checks, *state.check)
		}
	}
	errs = append(errs, r.releaseRemovedDisks(ctx, profile))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(checks) > 0 {
		observed.Volumes = status.WorstCheck(checks)
		return nil
	}
	var resizeMessages []string
	for _, v := range observed.VolumeStatuses {
		if v.Message != "" {
			resizeMessages = append(resizeMessages, "disk "+v.Name+": "+v.Message)
		}
	}
	if len(resizeMessages) > 0 {
		observed.Volumes = status.Pass(vmv1alpha1.ReasonResizeNotSupported, strings.Join(resizeMessages, "; "))
	}
	return nil
}

// previousVolumeMessage is the message a volume had in the stored status.
func previousVolumeMessage(profile *vmv1alpha1.VirtualMachineProfile, disk string) string {
	for _, v := range profile.Status.Volumes {
		if v.Name == disk {
			return v.Message
		}
	}
	return ""
}

func (r *Reconciler) reconcileDisk(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig) (diskState, error) {
	name := vmv1alpha1.VolumeName(profile.Name, disk.Name)
	state := diskState{status: vmv1alpha1.VolumeStatus{Name: disk.Name, PVCName: name}}
	size, err := resource.ParseQuantity(disk.Size)
	if err != nil {
		return state, fmt.Errorf("size %q: %w", disk.Size, err)
	}
	class, check, err := r.storageClass(ctx, disk)
	if err != nil || check != nil {
		state.check = check
		return state, err
	}
	image := profile.Spec.DiskImage(disk)
	if image != "" && !r.CDI {
		wait := status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"disk %s imports an image, which needs CDI (cdi.kubevirt.io/v1beta1), and CDI is not installed", disk.Name)
		state.check = &wait
		return state, nil
	}
	vol, err := r.readVolume(ctx, profile.Namespace, name, image != "")
	if err != nil {
		return state, err
	}
	if check := volumeOwnershipCheck(vol, profile, disk); check != nil {
		state.check = check
		return state, nil
	}
	if vol.top() == nil {
		if vol, err = r.createVolume(ctx, profile, disk, image, size); err != nil {
			return state, err
		}
	}
	if err := r.reconcileVolumeMeta(ctx, profile, disk, vol.top()); err != nil {
		return state, err
	}
	if importDone(vol) && disk.EffectiveRetainPolicy() == vmv1alpha1.RetainPolicyRetain {
		if err := r.detachImport(ctx, profile, disk, vol); err != nil {
			return state, err
		}
	}
	return r.observeDisk(ctx, profile, disk, class, size, image != "", vol, state)
}

func (r *Reconciler) readVolume(ctx context.Context, namespace, name string, image bool) (volume, error) {
	var vol volume
	key := client.ObjectKey{Namespace: namespace, Name: name}
	claim := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, key, claim); err == nil {
		vol.claim = claim
	} else if !apierrors.IsNotFound(err) {
		return vol, fmt.Errorf("read claim %s: %w", key, err)
	}
	if !image {
		return vol, nil
	}
	dv := &cdiv1.DataVolume{}
	if err := r.Client.Get(ctx, key, dv); err == nil {
		vol.dv = dv
	} else if !apierrors.IsNotFound(err) {
		return vol, fmt.Errorf("read DataVolume %s: %w", key, err)
	}
	return vol, nil
}

// volumeOwnershipCheck refuses a volume that is someone else's, and waits
// for one that still belongs to a deleted profile (or a deleted DataVolume)
// of the same name. A claim controlled by our DataVolume is CDI's, fine.
func volumeOwnershipCheck(vol volume, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig) *status.Check {
	if vol.dv != nil {
		if check := owner.Check(vol.dv, vol.dv, profile); check != nil {
			return check
		}
	}
	if vol.claim == nil {
		return nil
	}
	if ref := metav1.GetControllerOf(vol.claim); ref != nil && ref.Kind == "DataVolume" {
		if vol.dv != nil && ref.UID == vol.dv.UID {
			return nil
		}
		check := status.Settling(vmv1alpha1.ReasonPreviousProfileVolume,
			"disk %s: claim %s belongs to a DataVolume that was deleted and is being garbage-collected", disk.Name, vol.claim.Name)
		return &check
	}
	claim := vol.claim.DeepCopy()
	claim.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"))
	return owner.Check(claim, claim, profile)
}

// createVolume creates a disk's DataVolume (image) or claim (blank).
func (r *Reconciler) createVolume(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig,
	image string, size resource.Quantity) (volume, error) {
	var vol volume
	var want client.Object
	if image != "" {
		vol.dv = desired.DataVolume(profile, disk, image, size)
		want = vol.dv
	} else {
		vol.claim = desired.PVC(profile, disk, size)
		want = vol.claim
	}
	if err := r.Client.Create(ctx, want, client.FieldOwner(apply.FieldOwner)); err != nil {
		return vol, fmt.Errorf("create %s %s: %w", owner.KindOf(want), want.GetName(), err)
	}
	return vol, nil
}

// reconcileVolumeMeta keeps a disk's volume labelled, annotated with the
// profile that holds it, and owned exactly as its retain policy says. This
// also migrates volumes made by earlier versions (owned whatever the
// policy) and takes back retained volumes for a re-created profile.
func (r *Reconciler) reconcileVolumeMeta(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig, obj client.Object) error {
	labels := desired.VolumeLabels(profile, disk)
	refs := volumeOwnerRefs(obj.GetOwnerReferences(), desired.VolumeOwnerReferences(profile, disk))
	previousUID := obj.GetAnnotations()[vmv1alpha1.AnnotationProfileUID]
	labelsCurrent := true
	for key, value := range labels {
		labelsCurrent = labelsCurrent && obj.GetLabels()[key] == value
	}
	if labelsCurrent && previousUID == string(profile.UID) && slices.EqualFunc(refs, obj.GetOwnerReferences(), sameRef) {
		return nil
	}
	released := hasProfileRef(obj.GetOwnerReferences()) && !hasProfileRef(refs)
	if !hasProfileRef(obj.GetOwnerReferences()) && hasProfileRef(refs) {
		// A Delete disk's volume left without owner by an orphan deletion:
		// owned again only by a live profile (see liveForAdoption).
		if live, err := owner.LiveForAdoption(ctx, r.APIReader, profile); err != nil || !live {
			return err
		}
	}
	patch := map[string]any{
		"uid":             obj.GetUID(), // fails the patch if the object was replaced meanwhile
		"labels":          labels,
		"annotations":     map[string]string{vmv1alpha1.AnnotationProfileUID: string(profile.UID)},
		"ownerReferences": refs,
	}
	if err := r.patchMetadata(ctx, obj, patch); err != nil {
		return fmt.Errorf("disk %s: update ownership of %s: %w", disk.Name, obj.GetName(), err)
	}
	switch {
	case previousUID != "" && previousUID != string(profile.UID):
		r.event(profile, obj, corev1.EventTypeNormal, vmv1alpha1.EventAdopted, "adopted retained %s %s", owner.KindOf(obj), obj.GetName())
	case released:
		r.event(profile, obj, corev1.EventTypeNormal, vmv1alpha1.EventReleased,
			"%s %s has no owner reference (retainPolicy Retain): deleting the profile keeps it, and a profile re-created with this name adopts it", owner.KindOf(obj), obj.GetName())
	}
	return nil
}

// volumeOwnerRefs replaces the profile references among refs by want,
// keeping any other owner someone added.
func volumeOwnerRefs(refs, want []metav1.OwnerReference) []metav1.OwnerReference {
	kept := slices.DeleteFunc(slices.Clone(refs), func(ref metav1.OwnerReference) bool { return ref.Kind == "VirtualMachineProfile" })
	return append(kept, want...)
}

func hasProfileRef(refs []metav1.OwnerReference) bool {
	return slices.ContainsFunc(refs, func(ref metav1.OwnerReference) bool { return ref.Kind == "VirtualMachineProfile" })
}

func sameRef(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.Kind == b.Kind && ptrEqual(a.Controller, b.Controller) && ptrEqual(a.BlockOwnerDeletion, b.BlockOwnerDeletion)
}

func ptrEqual(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// patchMetadata merge-patches the metadata fields given.
func (r *Reconciler) patchMetadata(ctx context.Context, obj client.Object, metadata map[string]any) error {
	raw, err := json.Marshal(map[string]any{"metadata": metadata})
	if err != nil {
		return fmt.Errorf("metadata patch of %s: %w", obj.GetName(), err)
	}
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, raw), client.FieldOwner(apply.FieldOwner)); err != nil {
		return fmt.Errorf("patch the metadata of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// importDone: a DataVolume that finished importing into its bound claim.
func importDone(vol volume) bool {
	if vol.dv == nil || vol.claim == nil || vol.dv.Status.Phase != cdiv1.Succeeded || vol.claim.Status.Phase != corev1.ClaimBound {
		return false
	}
	ref := metav1.GetControllerOf(vol.claim)
	return ref != nil && ref.UID == vol.dv.UID
}

// detachImport makes a retained disk independent of its DataVolume once the
// import is done, as CDI's own DataVolume garbage collection does: the claim
// loses the DataVolume's owner reference and the DataVolume is deleted. A
// DataVolume is in kubectl's "all" category, so otherwise `kubectl delete
// all` would take the claim (and the data) with it. KubeVirt runs VMs whose
// DataVolume was collected from the claim of the same name.
func (r *Reconciler) detachImport(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig, vol volume) error {
	refs := slices.DeleteFunc(slices.Clone(vol.claim.OwnerReferences), func(ref metav1.OwnerReference) bool { return ref.UID == vol.dv.UID })
	annotations := map[string]string{vmv1alpha1.AnnotationProfileUID: string(profile.UID), vmv1alpha1.AnnotationImportedFrom: importSource(vol.dv)}
	patch := map[string]any{"uid": vol.claim.UID, "labels": desired.VolumeLabels(profile, disk), "annotations": annotations, "ownerReferences": refs}
	if err := r.patchMetadata(ctx, vol.claim, patch); err != nil {
		return fmt.Errorf("detach claim %s from its DataVolume: %w", vol.claim.Name, err)
	}
	// Orphan: should the patch above not have reached the garbage collector
	// yet, the claim still stays.
	err := r.Client.Delete(ctx, vol.dv, client.Preconditions{UID: &vol.dv.UID}, client.PropagationPolicy(metav1.DeletePropagationOrphan))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete imported DataVolume %s: %w", vol.dv.Name, err)
	}
	r.event(profile, vol.claim, corev1.EventTypeNormal, vmv1alpha1.EventImportDetached,
		"disk %s imported; claim %s is kept on its own and DataVolume %s was removed (retainPolicy Retain)", disk.Name, vol.claim.Name, vol.dv.Name)
	return nil
}

func importSource(dv *cdiv1.DataVolume) string {
	if dv.Spec.Source != nil && dv.Spec.Source.Registry != nil && dv.Spec.Source.Registry.URL != nil {
		return *dv.Spec.Source.Registry.URL
	}
	return "unknown"
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
		return nil, nil, fmt.Errorf("read StorageClass %s: %w", disk.StorageClassName, err)
	}
	return &class, nil, nil
}

// observeDisk reads the claim (and DataVolume) behind a disk into its status,
// and grows the claim when the disk's size grew.
func (r *Reconciler) observeDisk(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, disk *vmv1alpha1.DiskConfig,
	class *storagev1.StorageClass, size resource.Quantity, imported bool, vol volume, state diskState) (diskState, error) {
	detached := vol.claim != nil && vol.claim.Annotations[vmv1alpha1.AnnotationImportedFrom] != ""
	switch {
	case imported && vol.dv != nil:
		state.status.Phase, state.status.Progress = string(vol.dv.Status.Phase), string(vol.dv.Status.Progress)
	case imported && detached:
		state.status.Phase, state.status.Progress = string(cdiv1.Succeeded), "100.0%"
	case vol.claim != nil:
		state.status.Phase = string(vol.claim.Status.Phase)
	}
	if vol.claim != nil {
		state.status.Bound = vol.claim.Status.Phase == corev1.ClaimBound
		if capacity, ok := vol.claim.Status.Capacity[corev1.ResourceStorage]; ok {
			state.status.Capacity = capacity.String()
		}
	}
	state.check = status.DiskCheck(disk, imported && !detached, vol.dv, vol.claim, class)
	if vol.claim != nil && state.check == nil {
		resize, err := r.growClaim(ctx, profile, vol.claim, class, size)
		if err != nil {
			return state, err
		}
		state.status.Message = resize
	}
	return state, nil
}

// growClaim raises a bound claim's request when the disk's size grew past
// the size last asked for, when the class allows expansion, and otherwise
// says why it cannot. It returns the message for the volume's status
// (empty when nothing is pending). The comparison is with the size asked
// for, not the request: CDI inflates a DataVolume claim's request by the
// filesystem overhead (6 % by default), which hid growth below it.
func (r *Reconciler) growClaim(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, claim *corev1.PersistentVolumeClaim,
	class *storagev1.StorageClass, size resource.Quantity) (string, error) {
	current := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	asked := askedSize(claim)
	if size.Cmp(asked) <= 0 {
		return "", nil
	}
	if class == nil || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
		className := "the default class"
		if class != nil {
			className = "StorageClass " + class.Name
		}
		message := fmt.Sprintf("cannot grow from %s to %s: %s does not allow volume expansion", asked.String(), size.String(), className)
		// Once per change, not once per reconcile: an event is a write.
		if previousVolumeMessage(profile, claim.Labels[vmv1alpha1.LabelDisk]) != message {
			r.event(profile, claim, corev1.EventTypeWarning, vmv1alpha1.ReasonResizeNotSupported, "claim %s: %s", claim.Name, message)
		}
		return message, nil
	}
	request := grownRequest(current, asked, size)
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{vmv1alpha1.AnnotationDiskSize: size.String()}},
		"spec": map[string]any{"resources": map[string]any{
			"requests": map[string]string{string(corev1.ResourceStorage): request.String()},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("resize patch of claim %s: %w", claim.Name, err)
	}
	if err := r.Client.Patch(ctx, claim, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(apply.FieldOwner)); err != nil {
		return "", fmt.Errorf("grow claim %s: %w", claim.Name, err)
	}
	r.event(profile, claim, corev1.EventTypeNormal, vmv1alpha1.EventResizing, "growing claim %s from %s to %s (request %s)", claim.Name, asked.String(), size.String(), request.String())
	return "", nil
}

// askedSize is the disk size a claim was last asked for: its annotation
// (see AnnotationDiskSize), else, for claims made before it, the request.
func askedSize(claim *corev1.PersistentVolumeClaim) resource.Quantity {
	current := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	asked, err := resource.ParseQuantity(claim.Annotations[vmv1alpha1.AnnotationDiskSize])
	if err != nil || asked.Sign() <= 0 || asked.Cmp(current) > 0 {
		return current
	}
	return asked
}

// grownRequest is the request that gives size the headroom the claim has
// now over what was asked (CDI's filesystem overhead; none for a blank
// disk): current × size / asked, rounded up to a byte. KubeVirt grows the
// guest's disk image to the claim's capacity less that overhead, so the
// guest sees the size asked for. Never below size, never below current.
func grownRequest(current, asked, size resource.Quantity) resource.Quantity {
	if asked.Sign() <= 0 || current.Cmp(asked) <= 0 {
		return size
	}
	product := new(big.Int).Mul(big.NewInt(current.Value()), big.NewInt(size.Value()))
	divisor := big.NewInt(asked.Value())
	quotient, remainder := new(big.Int).QuoRem(product, divisor, new(big.Int))
	if remainder.Sign() > 0 {
		quotient.Add(quotient, big.NewInt(1))
	}
	if !quotient.IsInt64() {
		return size
	}
	request := *resource.NewQuantity(quotient.Int64(), resource.BinarySI)
	if request.Cmp(current) < 0 {
		return current
	}
	return request
}

// releaseRemovedDisks keeps the volumes of disks taken out of the spec:
// their profile owner reference goes, so deleting the profile later keeps
// them (data is never deleted unless the user asked for Delete on a disk
// that is still in the spec).
func (r *Reconciler) releaseRemovedDisks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	inSpec := map[string]bool{}
	for i := range profile.Spec.Disks {
		inSpec[profile.Spec.Disks[i].Name] = true
	}
	volumes, err := r.listVolumes(ctx, profile.Namespace, profile.Name)
	if err != nil {
		return err
	}
	for _, obj := range volumes {
		disk := obj.GetLabels()[vmv1alpha1.LabelDisk]
		if inSpec[disk] || !hasProfileRef(obj.GetOwnerReferences()) || owner.Of(obj, profile) != owner.Ours {
			continue
		}
		labels := maps.Clone(obj.GetLabels())
		labels[vmv1alpha1.LabelRetainPolicy] = string(vmv1alpha1.RetainPolicyRetain)
		patch := map[string]any{"uid": obj.GetUID(), "labels": labels, "ownerReferences": volumeOwnerRefs(obj.GetOwnerReferences(), nil)}
		if err := r.patchMetadata(ctx, obj, patch); err != nil {
			return fmt.Errorf("release volume %s of removed disk %s: %w", obj.GetName(), disk, err)
		}
		r.event(profile, obj, corev1.EventTypeNormal, vmv1alpha1.EventReleased,
			"disk %s left the spec; %s %s is kept without owner reference", disk, owner.KindOf(obj), obj.GetName())
	}
	return nil
}

// listVolumes lists the claims and DataVolumes made for a profile name.
func (r *Reconciler) listVolumes(ctx context.Context, namespace, profileName string) ([]client.Object, error) {
	selector := client.MatchingLabels{vmv1alpha1.LabelProfile: profileName, vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue}
	var claims corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &claims, client.InNamespace(namespace), selector); err != nil {
		return nil, fmt.Errorf("list claims of profile %s/%s: %w", namespace, profileName, err)
	}
	var volumes []client.Object
	for i := range claims.Items {
		claims.Items[i].SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"))
		volumes = append(volumes, &claims.Items[i])
	}
	if !r.CDI {
		return volumes, nil
	}
	var dataVolumes cdiv1.DataVolumeList
	if err := r.Client.List(ctx, &dataVolumes, client.InNamespace(namespace), selector); err != nil {
		return nil, fmt.Errorf("list DataVolumes of profile %s/%s: %w", namespace, profileName, err)
	}
	for i := range dataVolumes.Items {
		dataVolumes.Items[i].SetGroupVersionKind(cdiv1.SchemeGroupVersion.WithKind("DataVolume"))
		volumes = append(volumes, &dataVolumes.Items[i])
	}
	return volumes, nil
}

// ReleaseRetained drops the profile's owner reference from the
// volumes of disks it keeps (Retain, or no longer in the spec).
func (r *Reconciler) ReleaseRetained(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	volumes, err := r.listVolumes(ctx, profile.Namespace, profile.Name)
	if err != nil {
		return err
	}
	for _, obj := range volumes {
		if owner.Of(obj, profile) != owner.Ours || !retained(profile, obj.GetLabels()[vmv1alpha1.LabelDisk]) || !hasProfileRef(obj.GetOwnerReferences()) {
			continue
		}
		patch := map[string]any{"uid": obj.GetUID(), "ownerReferences": volumeOwnerRefs(obj.GetOwnerReferences(), nil)}
		if err := r.patchMetadata(ctx, obj, patch); err != nil {
			return fmt.Errorf("release retained volume %s: %w", obj.GetName(), err)
		}
		r.event(profile, obj, corev1.EventTypeNormal, vmv1alpha1.EventReleased, "kept %s %s (retainPolicy Retain)", owner.KindOf(obj), obj.GetName())
	}
	return nil
}

// retained says whether a volume is kept when its profile goes: disks with
// retainPolicy Retain, and volumes of disks no longer in the spec.
func retained(profile *vmv1alpha1.VirtualMachineProfile, diskName string) bool {
	for i := range profile.Spec.Disks {
		if profile.Spec.Disks[i].Name == diskName {
			return profile.Spec.Disks[i].EffectiveRetainPolicy() == vmv1alpha1.RetainPolicyRetain
		}
	}
	return true
}

// StorageClassNames are the StorageClasses a profile's disks name, for the
// index that wakes them when a class appears or changes.
func StorageClassNames(p *vmv1alpha1.VirtualMachineProfile) []string {
	var names []string
	for i := range p.Spec.Disks {
		if p.Spec.Disks[i].StorageClassName != "" {
			names = append(names, p.Spec.Disks[i].StorageClassName)
		}
	}
	return names
}
