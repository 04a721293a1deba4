package profile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// FieldOwner is the server-side-apply manager of everything the controller writes.
const FieldOwner = "vmop-controller"

// ownership says how an existing object relates to a profile.
type ownership int

const (
	// ownedByProfile: the profile is its controller owner.
	ownedByProfile ownership = iota
	// adoptable: created by the operator for a profile of this name and left
	// without owner (a retained disk): a re-created profile takes it back.
	adoptable
	// foreign: someone else's object; never modified, adopted or deleted.
	foreign
)

func ownershipOf(existing client.Object, profile *vmv1alpha1.VirtualMachineProfile) ownership {
	if ref := metav1.GetControllerOf(existing); ref != nil {
		if ref.UID == profile.UID {
			return ownedByProfile
		}
		return foreign
	}
	labels := existing.GetLabels()
	if labels[desired.LabelManagedBy] == desired.ManagedByValue && labels[desired.LabelProfile] == profile.Name {
		return adoptable
	}
	return foreign
}

func kindOf(obj k8sruntime.Object) string {
	return obj.GetObjectKind().GroupVersionKind().Kind
}

// nameConflict is the check reported when an object the profile needs
// exists and belongs to someone else.
func nameConflict(obj client.Object) status.Check {
	return status.Problem(vmv1alpha1.ReasonNameConflict,
		"%s %s already exists and was not created for this profile; it is left untouched: rename or remove it",
		kindOf(obj), obj.GetName())
}

// hashOf is a stable digest of what the controller wants an object to be.
func hashOf(obj client.Object) (string, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:16], nil
}

// get reads the object of obj's kind and name from the cache into a fresh
// object; found is false when it does not exist.
func (r *Reconciler) get(ctx context.Context, obj client.Object) (client.Object, bool, error) {
	fresh, err := r.Scheme.New(obj.GetObjectKind().GroupVersionKind())
	if err != nil {
		return nil, false, err
	}
	existing := fresh.(client.Object)
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(obj), existing)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	return existing, err == nil, err
}

// apply makes an object the profile owns look like want, with server-side
// apply. An object whose last applied hash matches costs no request at all,
// so a converged profile makes no writes. An existing object the profile
// does not own is never touched: that is a name conflict.
func (r *Reconciler) apply(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, want client.Object) (*status.Check, error) {
	existing, found, err := r.get(ctx, want)
	if err != nil {
		return nil, err
	}
	if found && ownershipOf(existing, profile) == foreign {
		conflict := nameConflict(want)
		return &conflict, nil
	}
	return nil, r.applyIfChanged(ctx, existing, want)
}

// applyIfChanged server-side-applies want unless existing already carries its hash.
func (r *Reconciler) applyIfChanged(ctx context.Context, existing, want client.Object) error {
	hash, err := hashOf(want)
	if err != nil {
		return err
	}
	if existing != nil && existing.GetAnnotations()[desired.AnnotationDesiredHash] == hash {
		return nil
	}
	annotations := want.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[desired.AnnotationDesiredHash] = hash
	want.SetAnnotations(annotations)
	content, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return err
	}
	// Status is not ours to set, and a zero creationTimestamp is noise.
	delete(content, "status")
	unstructured.RemoveNestedField(content, "metadata", "creationTimestamp")
	applyConfig := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: content})
	if err := r.Client.Apply(ctx, applyConfig, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", kindOf(want), want.GetName(), err)
	}
	return nil
}

// ensureCreated creates an object that is only ever created, never updated
// (a claim or a DataVolume: their specs are immutable), adopting it when it
// is a retained disk of this profile's name.
func (r *Reconciler) ensureCreated(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, want client.Object) (client.Object, *status.Check, error) {
	existing, found, err := r.get(ctx, want)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		if err := r.Client.Create(ctx, want, client.FieldOwner(FieldOwner)); err != nil {
			return nil, nil, fmt.Errorf("create %s %s: %w", kindOf(want), want.GetName(), err)
		}
		r.event(profile, "Normal", "Created", "created %s %s", kindOf(want), want.GetName())
		return want, nil, nil
	}
	switch ownershipOf(existing, profile) {
	case foreign:
		conflict := nameConflict(want)
		return existing, &conflict, nil
	case adoptable:
		return existing, nil, r.adopt(ctx, profile, existing, kindOf(want))
	}
	return existing, nil, nil
}

// adopt makes the profile the controller owner of a retained object again.
func (r *Reconciler) adopt(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, existing client.Object, kind string) error {
	patch := map[string]any{"metadata": map[string]any{
		"ownerReferences": append(existing.GetOwnerReferences(), desired.OwnerReference(profile)),
		// The UID precondition makes the patch fail if the object was replaced meanwhile.
		"uid": existing.GetUID(),
	}}
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, existing, client.RawPatch(types.MergePatchType, raw)); err != nil {
		return fmt.Errorf("adopt %s %s: %w", kind, existing.GetName(), err)
	}
	r.event(profile, "Normal", "Adopted", "adopted retained %s %s", kind, existing.GetName())
	return nil
}
