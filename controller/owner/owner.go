// Package owner decides whether an object the operator would write for a
// profile is the profile's to take: made for it (or for a profile of its
// name and left without owner), still a deleted namesake's, or someone
// else's. The profile and volume reconcilers share these rules.
package owner

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// Relation says how an existing object relates to a profile.
type Relation int

const (
	// Ours is an object made by the operator for a profile of this name, and either
	// owned by this profile or by no profile at all (a retained disk, or a
	// child an orphan deletion left without owner: the VM, still running,
	// its attachments, cloud-init Secret and disks): this profile adopts it,
	// as a Deployment adopts its ReplicaSets after --cascade=orphan.
	Ours Relation = iota
	// PreviousProfile is an object still owned by a deleted profile of the same name;
	// the garbage collector is about to remove it. Wait, never take it.
	PreviousProfile
	// Foreign is someone else's object; never modified, adopted or deleted.
	Foreign
)

// Of says how existing relates to profile.
func Of(existing client.Object, profile *vmv1alpha1.VirtualMachineProfile) Relation {
	labels := existing.GetLabels()
	labelled := labels[vmv1alpha1.LabelManagedBy] == vmv1alpha1.ManagedByValue && labels[vmv1alpha1.LabelProfile] == profile.Name
	ref := metav1.GetControllerOf(existing)
	switch {
	case ref != nil && ref.UID == profile.UID:
		return Ours
	case ref != nil && labelled && ref.Kind == "VirtualMachineProfile" && ref.Name == profile.Name:
		return PreviousProfile
	case ref == nil && labelled:
		return Ours
	}
	return Foreign
}

// KindOf names an object's kind for messages. Objects read from the cache
// may come without their type meta, so known types are named by Go type.
func KindOf(obj k8sruntime.Object) string {
	if kind := obj.GetObjectKind().GroupVersionKind().Kind; kind != "" {
		return kind
	}
	switch obj.(type) {
	case *corev1.PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *cdiv1.DataVolume:
		return "DataVolume"
	case *kubevirtv1.VirtualMachine:
		return "VirtualMachine"
	case *nadv1.NetworkAttachmentDefinition:
		return "NetworkAttachmentDefinition"
	case *corev1.Secret:
		return "Secret"
	}
	return fmt.Sprintf("%T", obj)
}

// Check is the check reported when an object the profile needs
// exists and cannot be taken: nil when it is ours.
func Check(existing, want client.Object, profile *vmv1alpha1.VirtualMachineProfile) *status.Check {
	switch Of(existing, profile) {
	case Foreign:
		check := status.Problem(vmv1alpha1.ReasonNameConflict,
			"%s %s already exists and was not created for this profile; it is left untouched: rename or remove it",
			KindOf(want), want.GetName())
		return &check
	case PreviousProfile:
		check := status.Settling(vmv1alpha1.ReasonPreviousProfileVolume,
			"%s %s still belongs to a deleted profile named %s and is being garbage-collected",
			KindOf(want), want.GetName(), profile.Name)
		return &check
	}
	return nil
}

// LiveForAdoption says whether the profile may take a child left without
// owner: only when the apiserver itself (not the cache) has this very
// profile and it is not being deleted. A reconcile that read the profile
// just before an orphan deletion would otherwise put back the owner
// reference the garbage collector has just removed, and the garbage
// collector would then delete the child the user asked to keep. The child
// was seen without owner, so the orphaning, and the deletion before it, had
// happened before this read: it cannot miss them.
func LiveForAdoption(ctx context.Context, reader client.Reader, profile *vmv1alpha1.VirtualMachineProfile) (bool, error) {
	var current vmv1alpha1.VirtualMachineProfile
	err := reader.Get(ctx, client.ObjectKeyFromObject(profile), &current)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read profile %s/%s before adopting: %w", profile.Namespace, profile.Name, err)
	}
	return current.UID == profile.UID && current.DeletionTimestamp.IsZero(), nil
}

// ProfileOfChild maps an object the operator made to the profile whose
// name its labels carry.
func ProfileOfChild(_ context.Context, obj client.Object) []reconcile.Request {
	labels := obj.GetLabels()
	if labels[vmv1alpha1.LabelManagedBy] != vmv1alpha1.ManagedByValue || labels[vmv1alpha1.LabelProfile] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: labels[vmv1alpha1.LabelProfile]}}}
}

// ProfileOfInstance maps a VM instance to its profile through the label the
// VM template carries.
func ProfileOfInstance(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[vmv1alpha1.LabelProfile]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}
