package profile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

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
