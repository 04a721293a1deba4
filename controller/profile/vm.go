package profile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// applyVM creates or updates the VirtualMachine. A VM deleted from under
// the profile is simply created again, with the same disks.
func (r *Reconciler) applyVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	var existing *kubevirtv1.VirtualMachine
	current := &kubevirtv1.VirtualMachine{}
	if err := r.Client.Get(ctx, key, current); err == nil {
		existing = current
	} else if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("read VirtualMachine %s: %w", key, err)
	}
	// A VM halted when access was revoked gets the profile's run strategy
	// back, not the Halted it was given.
	kept := desired.KeptRunStrategy(profile, existing)
	revoked := existing != nil && existing.Annotations[vmv1alpha1.AnnotationRevoked] != ""
	if revoked {
		kept = nil
	}
	vm, err := desired.VM(profile, observed.Affinity, kept)
	if err != nil {
		return err
	}
	check, err := r.apply(ctx, profile, vm)
	if check != nil {
		observed.Blockers = append(observed.Blockers, *check)
	}
	if revoked && err == nil && check == nil {
		err = r.revoker().Restore(ctx, profile, existing)
	}
	if err == nil && check == nil && existing == nil {
		// Just created: the cache cannot hold it yet, but the status can
		// already say the VM is being created rather than not made.
		observed.VM = vm
		if profile.Status.VMName != "" {
			// The status named a VM, so this one replaces a VM deleted
			// from under the profile: say so, where the user looks.
			r.event(profile, vm, corev1.EventTypeNormal, vmv1alpha1.EventRecreated,
				"VirtualMachine %s was deleted from under the profile; created it again with the same disks", vm.Name)
		}
	}
	return err
}

// observeVM reads the profile's VM and VM instance, when they are ours.
func (r *Reconciler) observeVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	if !r.Deps.KubeVirt {
		return nil
	}
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	var vm kubevirtv1.VirtualMachine
	if err := r.Client.Get(ctx, key, &vm); err != nil {
		return client.IgnoreNotFound(err) // a VM created by this reconcile stays observed
	}
	if ref := metav1.GetControllerOf(&vm); ref == nil || ref.UID != profile.UID {
		return nil // someone else's VM: the apply step reports the name conflict
	}
	observed.VM = &vm
	var vmi kubevirtv1.VirtualMachineInstance
	if err := r.Client.Get(ctx, key, &vmi); err != nil {
		return client.IgnoreNotFound(err)
	}
	observed.VMI = &vmi
	return nil
}
