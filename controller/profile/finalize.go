package profile

import (
	"context"
	"encoding/json"
	"fmt"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// finalize runs when a profile is deleted: it releases the volumes to keep
// (so the garbage collector leaves them), waits until the shared host
// policies it was the last user of are removed, then lets the profile go.
// Everything else it owns — VM, attachments, cloud-init, volumes to delete —
// goes with it through owner references.
func (r *Reconciler) finalize(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	if !controllerutil.ContainsFinalizer(profile, Finalizer) {
		return nil
	}
	if err := r.releaseRetainedVolumes(ctx, profile); err != nil {
		return err
	}
	waiting, err := r.hostPoliciesStillInUse(ctx, profile)
	if err != nil || waiting {
		return err
	}
	patch := client.MergeFrom(profile.DeepCopy())
	controllerutil.RemoveFinalizer(profile, Finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, profile, patch))
}

// retained says whether a volume is kept when its profile goes: disks with
// retainPolicy Retain, and volumes of disks no longer in the spec (data is
// never deleted unless the user asked for Delete).
func retained(profile *vmv1alpha1.VirtualMachineProfile, diskName string) bool {
	for i := range profile.Spec.Disks {
		if profile.Spec.Disks[i].Name == diskName {
			return profile.Spec.Disks[i].EffectiveRetainPolicy() == vmv1alpha1.RetainPolicyRetain
		}
	}
	return true
}

// releaseRetainedVolumes removes the profile's owner reference from the
// DataVolumes and claims it keeps. A DataVolume's claim is owned by the
// DataVolume, so it stays with it.
func (r *Reconciler) releaseRetainedVolumes(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	selector := client.MatchingLabels{desired.LabelProfile: profile.Name, desired.LabelManagedBy: desired.ManagedByValue}
	var claims corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &claims, client.InNamespace(profile.Namespace), selector); err != nil {
		return err
	}
	var volumes []client.Object
	for i := range claims.Items {
		volumes = append(volumes, &claims.Items[i])
	}
	if r.Deps.CDI {
		var dataVolumes cdiv1.DataVolumeList
		if err := r.Client.List(ctx, &dataVolumes, client.InNamespace(profile.Namespace), selector); err != nil {
			return err
		}
		for i := range dataVolumes.Items {
			volumes = append(volumes, &dataVolumes.Items[i])
		}
	}
	for _, volume := range volumes {
		if ownershipOf(volume, profile) != ownedByProfile || !retained(profile, volume.GetLabels()[desired.LabelDisk]) {
			continue
		}
		if err := r.release(ctx, profile, volume); err != nil {
			return err
		}
	}
	return nil
}

// release drops the profile's owner reference from one object.
func (r *Reconciler) release(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, obj client.Object) error {
	var kept []metav1.OwnerReference
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID != profile.UID {
			kept = append(kept, ref)
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": kept, "uid": obj.GetUID()}})
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("retain %s: %w", obj.GetName(), err)
	}
	r.event(profile, "Normal", "Retained", "kept volume %s (retainPolicy Retain); a profile re-created with this name adopts it", obj.GetName())
	return nil
}

// hostPoliciesStillInUse says whether a policy this profile needed still
// exists with no other user: the host-network reconciler is removing it
// (state absent, then delete), and the profile waits for that.
func (r *Reconciler) hostPoliciesStillInUse(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (bool, error) {
	if !r.Deps.NMState {
		return false, nil
	}
	for _, host := range hostNetworks(profile) {
		users, err := r.hostInterfaceUsers(ctx, host.Interface)
		if err != nil {
			return false, err
		}
		if len(users) > 0 {
			continue
		}
		err = r.Client.Get(ctx, client.ObjectKey{Name: desired.NNCPName(host.Interface)}, &nmstatev1.NodeNetworkConfigurationPolicy{})
		if err == nil {
			return true, nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
	}
	return false, nil
}
