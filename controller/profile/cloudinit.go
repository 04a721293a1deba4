package profile

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcileCloudInit writes the cloud-init Secret of a profile whose
// cloud-init data does not fit inline in the VM (desired.MaxInlineCloudInitBytes);
// every other profile needs none.
//
// The controller has no right to read Secrets (so a stolen token reads
// none): it writes this one blind, by server-side apply, and only when the
// VM's vmv1alpha1.AnnotationCloudInitHash says the content changed, so a
// converged profile costs no write. Someone else's Secret of the same name
// is protected by the chart's admission policy, which lets the controller
// update only Secrets labelled as its own.
//
// The SSH key Secret is not checked either: KubeVirt reports a missing one
// when it starts the VM (its virt-launcher pod waits for the Secret), and
// the profile's status shows the VM not ready.
func (r *Reconciler) reconcileCloudInit(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	if !r.Deps.KubeVirt {
		return nil // nothing would consume it
	}
	networkData, err := desired.NetworkData(profile)
	if err != nil {
		return fmt.Errorf("network data of profile %s/%s: %w", profile.Namespace, profile.Name, err)
	}
	if desired.CloudInitFitsInline(desired.UserData(profile), networkData) {
		return nil
	}
	secret, err := desired.CloudInitSecret(profile)
	if err != nil {
		return err
	}
	vm, err := r.cachedVM(ctx, profile)
	if err != nil {
		return err
	}
	if vm != nil && ownershipOf(vm, profile) == foreign {
		return nil // someone else's VM: the VM step reports it
	}
	adopting := vm != nil && metav1.GetControllerOf(vm) == nil
	if vm != nil && !adopting && vm.Annotations[vmv1alpha1.AnnotationCloudInitHash] == desired.CloudInitHash(secret) {
		return nil // the Secret holds this already
	}
	if adopting {
		// An orphan deletion left the VM, and with it this Secret, without
		// owner. Written again although its content may be unchanged, so
		// that it carries this profile's owner reference and goes with it
		// later; only for a live profile (see liveForAdoption).
		if live, err := r.liveForAdoption(ctx, profile); err != nil || !live {
			return err
		}
	}
	_, err = r.applier().Apply(ctx, nil, secret)
	if apierrors.IsForbidden(err) {
		// Unread, a Secret of that name may be someone else's: the chart's
		// admission policy refuses the write, as ownershipCheck would.
		observed.Blockers = append(observed.Blockers, status.Problem(vmv1alpha1.ReasonNameConflict,
			"Secret %s could not be written (%v); if it was not created for this profile, rename or remove it", secret.Name, err))
		return nil
	}
	return err
}

// cachedVM is the VM named after the profile, from the cache; nil when
// there is none.
func (r *Reconciler) cachedVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (*kubevirtv1.VirtualMachine, error) {
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	var vm kubevirtv1.VirtualMachine
	if err := r.Client.Get(ctx, key, &vm); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("read VirtualMachine %s: %w", key, err)
	}
	return &vm, nil
}
