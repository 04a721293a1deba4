package profile

import (
	"context"

	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcileVM creates or updates the VirtualMachine once nothing holds it,
// and reads it and its instance back for status. A VM deleted from under the
// profile is simply created again, with the same disks.
func (r *Reconciler) reconcileVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	if !r.Deps.KubeVirt {
		observed.Blockers = append(observed.Blockers, status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"KubeVirt (kubevirt.io/v1 VirtualMachine) is not installed; networks and disks are prepared, the VM waits"))
		return nil
	}
	if !observed.Holds() {
		if err := r.applyVM(ctx, profile, observed); err != nil {
			return err
		}
	}
	return r.observeVM(ctx, profile, observed)
}

func (r *Reconciler) applyVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	vm, err := desired.VM(profile, observed.Affinity)
	if err != nil {
		return err
	}
	existing, found, err := r.get(ctx, vm)
	if err != nil {
		return err
	}
	if found && ownershipOf(existing, profile) != ownedByProfile {
		observed.Blockers = append(observed.Blockers, nameConflict(vm))
		return nil
	}
	if err := r.applyIfChanged(ctx, existing, vm); err != nil {
		return err
	}
	if !found {
		r.event(profile, "Normal", "Created", "created VirtualMachine %s", vm.Name)
	}
	return nil
}

// observeVM reads the profile's VM and VM instance, when they are ours.
func (r *Reconciler) observeVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	var vm kubevirtv1.VirtualMachine
	if err := r.Client.Get(ctx, key, &vm); err != nil {
		return client.IgnoreNotFound(err)
	}
	if ownershipOf(&vm, profile) != ownedByProfile {
		return nil
	}
	observed.VM = &vm
	var vmi kubevirtv1.VirtualMachineInstance
	if err := r.Client.Get(ctx, key, &vmi); err != nil {
		return client.IgnoreNotFound(err)
	}
	observed.VMI = &vmi
	return nil
}
