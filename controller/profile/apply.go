package profile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/owner"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// ownership, foreign, ownershipOf, kindOf and ownershipCheck name the
// ownership package's rules here, where networks, cloud-init and the VM
// use them.
type ownership = owner.Relation

const foreign = owner.Foreign

func ownershipOf(existing client.Object, profile *vmv1alpha1.VirtualMachineProfile) ownership {
	return owner.Of(existing, profile)
}

func kindOf(obj k8sruntime.Object) string { return owner.KindOf(obj) }

func ownershipCheck(existing, want client.Object, profile *vmv1alpha1.VirtualMachineProfile) *status.Check {
	return owner.Check(existing, want, profile)
}

// liveForAdoption: see owner.LiveForAdoption.
func (r *Reconciler) liveForAdoption(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (bool, error) {
	return owner.LiveForAdoption(ctx, r.APIReader, profile)
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
