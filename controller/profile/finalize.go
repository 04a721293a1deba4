package profile

import (
	"context"
	"errors"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// finalizeLegacy handles a profile deleted while it still carries the
// finalizer of earlier versions: its retained disks lose their owner
// reference (if the migration had not run yet), then the finalizer goes.
// New profiles have no finalizer and need nothing here.
func (r *Reconciler) finalizeLegacy(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	if !controllerutil.ContainsFinalizer(profile, LegacyFinalizer) {
		return nil
	}
	if err := r.releaseRetainedVolumes(ctx, profile); err != nil {
		return err
	}
	return r.removeLegacyFinalizer(ctx, profile)
}

// dropLegacyFinalizer removes the old finalizer from a live profile once a
// reconcile succeeded, which means its disks are owned as their policy says.
func (r *Reconciler) dropLegacyFinalizer(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	if !controllerutil.ContainsFinalizer(profile, LegacyFinalizer) {
		return nil
	}
	return r.removeLegacyFinalizer(ctx, profile)
}

func (r *Reconciler) removeLegacyFinalizer(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	patch := client.MergeFrom(profile.DeepCopy())
	controllerutil.RemoveFinalizer(profile, LegacyFinalizer)
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, profile, patch)); err != nil {
		return fmt.Errorf("remove legacy finalizer from profile %s/%s: %w", profile.Namespace, profile.Name, err)
	}
	return nil
}

// releaseRetainedVolumes drops the profile's owner reference from the
// volumes of disks it keeps (Retain, or no longer in the spec).
func (r *Reconciler) releaseRetainedVolumes(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	volumes, err := r.listVolumes(ctx, profile.Namespace, profile.Name)
	if err != nil {
		return err
	}
	for _, obj := range volumes {
		if ownershipOf(obj, profile) != ours || !retained(profile, obj.GetLabels()[desired.LabelDisk]) || !hasProfileRef(obj.GetOwnerReferences()) {
			continue
		}
		patch := map[string]any{"uid": obj.GetUID(), "ownerReferences": volumeOwnerRefs(obj.GetOwnerReferences(), nil)}
		if err := r.patchMetadata(ctx, obj, patch); err != nil {
			return fmt.Errorf("release retained volume %s: %w", obj.GetName(), err)
		}
		r.event(profile, obj, corev1.EventTypeNormal, vmv1alpha1.EventReleased, "kept %s %s (retainPolicy Retain)", kindOf(obj), obj.GetName())
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

// collectOrphans runs when a profile is gone. Its children normally go
// with it through owner references; an orphan deletion (kubectl delete
// --cascade=orphan) leaves them without owner instead. The VM, attachments
// and cloud-init of the gone profile are deleted, and so are volumes whose
// retain policy is Delete; Retain volumes stay for a profile re-created with
// the name. Only objects with no owner at all are touched: anything still
// owned is the garbage collector's.
func (r *Reconciler) collectOrphans(ctx context.Context, key types.NamespacedName) error {
	// The cache may lag behind a re-creation: only delete when the apiserver
	// itself says no profile of this name exists.
	err := r.APIReader.Get(ctx, key, &vmv1alpha1.VirtualMachineProfile{})
	if err == nil || !apierrors.IsNotFound(err) {
		return client.IgnoreNotFound(err)
	}
	candidates, err := r.orphanCandidates(ctx, key)
	if err != nil {
		return err
	}
	var orphans []client.Object
	for _, obj := range candidates {
		if len(obj.GetOwnerReferences()) == 0 && obj.GetLabels()[desired.LabelRetainPolicy] != string(vmv1alpha1.RetainPolicyRetain) {
			orphans = append(orphans, obj)
		}
	}
	if len(orphans) > 0 {
		// An orphan deletion left these; it left the cloud-init Secret too,
		// if there is one. The controller cannot list Secrets: it deletes
		// it by name, first, so that a failure is retried while the other
		// orphans still show what happened. (A normal deletion leaves no
		// orphan: the garbage collector takes the Secret with the rest.)
		orphans = append([]client.Object{cloudInitSecretRef(key)}, orphans...)
	}
	var errs []error
	for _, obj := range orphans {
		err := r.Client.Delete(ctx, obj, deletePreconditions(obj))
		switch {
		case apierrors.IsNotFound(err):
			continue
		case obj.GetUID() == "" && apierrors.IsForbidden(err):
			// Deleted unseen, and the admission policy says the stored
			// object is not the controller's: someone else's, left alone.
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("delete orphaned %s %s: %w", kindOf(obj), obj.GetName(), err))
			continue
		}
		log.FromContext(ctx).Info("deleted orphan of a deleted profile", "kind", kindOf(obj), "name", obj.GetName())
	}
	return errors.Join(errs...)
}

// deletePreconditions make a delete of an object that was read apply to
// that very object (not one re-created since under its name); an object
// deleted unseen (no UID) has none.
func deletePreconditions(obj client.Object) client.DeleteOption {
	uid := obj.GetUID()
	if uid == "" {
		return &client.DeleteOptions{}
	}
	return client.Preconditions{UID: &uid}
}

// cloudInitSecretRef names the cloud-init Secret of a profile, for a
// delete that does not read it first. The chart's admission policy lets
// the delete through only when the stored Secret is labelled as the
// controller's; someone else's Secret of that name stays.
func cloudInitSecretRef(key types.NamespacedName) client.Object {
	secret := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: desired.CloudInitSecretName(key.Name)}}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return secret
}

// orphanCandidates lists every object made for a profile of that name,
// but its cloud-init Secret, which the controller cannot list.
// Volumes without a retain-policy label (made by earlier versions) count as
// Retain: data is never deleted on a guess.
func (r *Reconciler) orphanCandidates(ctx context.Context, key types.NamespacedName) ([]client.Object, error) {
	selector := client.MatchingLabels{desired.LabelProfile: key.Name, desired.LabelManagedBy: desired.ManagedByValue}
	in := client.InNamespace(key.Namespace)
	volumes, err := r.listVolumes(ctx, key.Namespace, key.Name)
	if err != nil {
		return nil, err
	}
	var candidates []client.Object
	for _, v := range volumes {
		if v.GetLabels()[desired.LabelRetainPolicy] == string(vmv1alpha1.RetainPolicyDelete) {
			candidates = append(candidates, v)
		}
	}
	if r.Deps.KubeVirt {
		var vms kubevirtv1.VirtualMachineList
		if err := r.Client.List(ctx, &vms, in, selector); err != nil {
			return nil, fmt.Errorf("list VMs of %s: %w", key, err)
		}
		for i := range vms.Items {
			vms.Items[i].SetGroupVersionKind(kubevirtv1.VirtualMachineGroupVersionKind)
			candidates = append(candidates, &vms.Items[i])
		}
	}
	if r.Deps.Multus {
		var nads nadv1.NetworkAttachmentDefinitionList
		if err := r.Client.List(ctx, &nads, in, selector); err != nil {
			return nil, fmt.Errorf("list attachments of %s: %w", key, err)
		}
		for i := range nads.Items {
			nads.Items[i].SetGroupVersionKind(nadv1.SchemeGroupVersion.WithKind("NetworkAttachmentDefinition"))
			candidates = append(candidates, &nads.Items[i])
		}
	}
	return candidates, nil
}
