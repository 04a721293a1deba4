package profile

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// ownership says how an existing object relates to a profile.
type ownership int

const (
	// ours: made by the operator for a profile of this name, and either
	// owned by this profile or by no profile at all (a retained disk, or a
	// child an orphan deletion left without owner: the VM, still running,
	// its attachments, cloud-init Secret and disks): this profile adopts it,
	// as a Deployment adopts its ReplicaSets after --cascade=orphan.
	ours ownership = iota
	// previousProfile: still owned by a deleted profile of the same name;
	// the garbage collector is about to remove it. Wait, never take it.
	previousProfile
	// foreign: someone else's object; never modified, adopted or deleted.
	foreign
)

func ownershipOf(existing client.Object, profile *vmv1alpha1.VirtualMachineProfile) ownership {
	labels := existing.GetLabels()
	labelled := labels[desired.LabelManagedBy] == desired.ManagedByValue && labels[desired.LabelProfile] == profile.Name
	ref := metav1.GetControllerOf(existing)
	switch {
	case ref != nil && ref.UID == profile.UID:
		return ours
	case ref != nil && labelled && ref.Kind == "VirtualMachineProfile" && ref.Name == profile.Name:
		return previousProfile
	case ref == nil && labelled:
		return ours
	}
	return foreign
}

// kindOf names an object's kind for messages. Objects read from the cache
// may come without their type meta, so known types are named by Go type.
func kindOf(obj k8sruntime.Object) string {
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

// ownershipCheck is the check reported when an object the profile needs
// exists and cannot be taken: nil when it is ours.
func ownershipCheck(existing client.Object, want client.Object, profile *vmv1alpha1.VirtualMachineProfile) *status.Check {
	switch ownershipOf(existing, profile) {
	case foreign:
		check := status.Problem(vmv1alpha1.ReasonNameConflict,
			"%s %s already exists and was not created for this profile; it is left untouched: rename or remove it",
			kindOf(want), want.GetName())
		return &check
	case previousProfile:
		check := status.Settling(vmv1alpha1.ReasonPreviousProfileVolume,
			"%s %s still belongs to a deleted profile named %s and is being garbage-collected",
			kindOf(want), want.GetName(), profile.Name)
		return &check
	}
	return nil
}

// get reads the object of want's kind and name from the cache into a fresh
// object; nil when it does not exist.
func (r *Reconciler) get(ctx context.Context, want client.Object) (client.Object, error) {
	fresh, err := r.Scheme.New(want.GetObjectKind().GroupVersionKind())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", want.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(want), err)
	}
	existing := fresh.(client.Object)
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(want), existing)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", kindOf(want), client.ObjectKeyFromObject(want), err)
	}
	return existing, nil
}

// apply makes an object the profile owns look like want. An existing
// object that is not the profile's is never touched: the check says why.
func (r *Reconciler) apply(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, want client.Object) (*status.Check, error) {
	existing, err := r.get(ctx, want)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		if check := ownershipCheck(existing, want, profile); check != nil {
			return check, nil
		}
	}
	if existing != nil && metav1.GetControllerOf(existing) == nil {
		if live, err := r.liveForAdoption(ctx, profile); err != nil || !live {
			return nil, err
		}
	}
	wrote, err := r.applier().Apply(ctx, existing, want)
	if err != nil {
		return nil, err
	}
	// Creating a child records no event: the status names every child, and
	// at scale one event per child was the largest share of the writes
	// (4 of 9 per profile in make bench). Events are for what someone
	// should notice, such as taking over an object left without owner.
	if wrote && existing != nil && metav1.GetControllerOf(existing) == nil {
		r.event(profile, want, corev1.EventTypeNormal, vmv1alpha1.EventAdopted, "adopted %s %s, left without owner", kindOf(want), want.GetName())
	}
	return nil, nil
}

// liveForAdoption says whether the profile may take a child left without
// owner: only when the apiserver itself (not the cache) has this very
// profile and it is not being deleted. A reconcile that read the profile
// just before an orphan deletion would otherwise put back the owner
// reference the garbage collector has just removed, and the garbage
// collector would then delete the child the user asked to keep. The child
// was seen without owner, so the orphaning, and the deletion before it, had
// happened before this read: it cannot miss them.
func (r *Reconciler) liveForAdoption(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (bool, error) {
	var current vmv1alpha1.VirtualMachineProfile
	err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(profile), &current)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read profile %s/%s before adopting: %w", profile.Namespace, profile.Name, err)
	}
	return current.UID == profile.UID && current.DeletionTimestamp.IsZero(), nil
}
