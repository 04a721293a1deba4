package profile

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// finalizeLegacy handles a profile deleted while it still carries the
// finalizer of earlier versions: its retained disks lose their owner
// reference (if the migration had not run yet), then the finalizer goes.
// New profiles have no finalizer and need nothing here.
func (r *Reconciler) finalizeLegacy(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	if !controllerutil.ContainsFinalizer(profile, vmv1alpha1.FinalizerLegacyProfile) {
		return nil
	}
	if err := r.volumes().ReleaseRetained(ctx, profile); err != nil {
		return err
	}
	return r.removeLegacyFinalizer(ctx, profile)
}

// dropLegacyFinalizer removes the old finalizer from a live profile once a
// reconcile succeeded, which means its disks are owned as their policy says.
func (r *Reconciler) dropLegacyFinalizer(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	if !controllerutil.ContainsFinalizer(profile, vmv1alpha1.FinalizerLegacyProfile) {
		return nil
	}
	return r.removeLegacyFinalizer(ctx, profile)
}

func (r *Reconciler) removeLegacyFinalizer(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	patch := client.MergeFrom(profile.DeepCopy())
	controllerutil.RemoveFinalizer(profile, vmv1alpha1.FinalizerLegacyProfile)
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, profile, patch)); err != nil {
		return fmt.Errorf("remove legacy finalizer from profile %s/%s: %w", profile.Namespace, profile.Name, err)
	}
	return nil
}
