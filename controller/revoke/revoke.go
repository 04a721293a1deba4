// Package revoke takes a profile whose access to a host network was
// revoked off the segment — its VM halted, the attachments the operator
// made for it deleted — and gives the VM its run strategy back once access
// is restored. The profile reconciler decides when (a refusal from attach);
// this package does the writes and says what it did, in events and in the
// profile's networks check.
package revoke

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/owner"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// Event records an event on the profile about related, the child object
// it concerns (nil for none), as the profile reconciler records them.
type Event func(profile *vmv1alpha1.VirtualMachineProfile, related client.Object, eventType, reason, format string, args ...any)

// Revoker halts, restores and cleans up after one profile's VM.
type Revoker struct {
	Client client.Client
	// KubeVirt and Multus say whether VMs and NetworkAttachmentDefinitions
	// exist to be read: without them there is nothing to halt or delete.
	KubeVirt bool
	Multus   bool
	// Event records what was done (nil: nothing is recorded).
	Event Event
}

func (v Revoker) event(profile *vmv1alpha1.VirtualMachineProfile, related client.Object, eventType, reason, format string, args ...any) {
	if v.Event != nil {
		v.Event(profile, related, eventType, reason, format, args...)
	}
}

// Revoke takes a profile whose network a HostNetwork's rule now excludes
// (or whose HostNetwork is being deleted) off the segment: its VM is
// halted and the attachments the operator made for it are deleted. A
// refusal that is no revocation (a HostNetwork not found, not Ready, a
// cache not synced yet) may be transient and touches nothing, unless the
// VM was already revoked: it then stays halted until access is restored.
// The instance keeps its address, MAC and HostNetwork until it is gone
// (identity.Checker, attach.Reader.Users).
func (v Revoker) Revoke(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, refusal *attach.Refusal, observed *status.Observed) error {
	observed.Networks = status.Problem(refusal.Reason, "%s", refusal.Message)
	vm, err := v.ownVM(ctx, profile)
	if err != nil {
		return err
	}
	if !refusal.Revokes && (vm == nil || vm.Annotations[vmv1alpha1.AnnotationRevoked] == "") {
		return nil
	}
	halted, err := v.haltRevoked(ctx, vm, refusal)
	if err != nil {
		return err
	}
	deleted, err := v.DeleteNADs(ctx, profile, nil, "access to its host network was revoked")
	if err != nil {
		return err
	}
	if vm == nil && deleted == 0 {
		return nil // never admitted: a plain refusal
	}
	restore := "access is restored"
	if refusal.Restore != "" {
		restore = refusal.Restore
	}
	consequence := "the VM is halted and its attachments deleted: it starts again once"
	if vm == nil || vm.Annotations[vmv1alpha1.AnnotationRevoked] == "" {
		// Stopped by its user before: restoring access does not start it.
		consequence = "its attachments are deleted: they are made again once"
	}
	observed.Networks = status.Problem(refusal.Reason, "%s; %s %s", refusal.Message, consequence, restore)
	if halted || deleted > 0 {
		v.event(profile, vm, corev1.EventTypeWarning, vmv1alpha1.EventAccessRevoked,
			"%s: halted the VM and deleted %d attachment(s); it starts again once %s", refusal.Message, deleted, restore)
	}
	return nil
}

// ownVM reads the profile's VM when the profile controls it; nil otherwise.
func (v Revoker) ownVM(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (*kubevirtv1.VirtualMachine, error) {
	if !v.KubeVirt {
		return nil, nil
	}
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	var vm kubevirtv1.VirtualMachine
	if err := v.Client.Get(ctx, key, &vm); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("read VirtualMachine %s: %w", key, err)
		}
		return nil, nil
	}
	if ref := metav1.GetControllerOf(&vm); ref == nil || ref.UID != profile.UID {
		return nil, nil
	}
	return &vm, nil
}

// haltRevoked sets the VM's runStrategy to Halted and marks it revoked.
// A VM already halted is left alone: halted by this (marked), or stopped
// by its user (virtctl stop), left unmarked so that restoring access does
// not start it. It says whether it wrote.
func (v Revoker) haltRevoked(ctx context.Context, vm *kubevirtv1.VirtualMachine, refusal *attach.Refusal) (bool, error) {
	if vm == nil || (vm.Spec.RunStrategy != nil && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyHalted) {
		return false, nil
	}
	patch := client.MergeFrom(vm.DeepCopy())
	strategy := kubevirtv1.RunStrategyHalted
	vm.Spec.RunStrategy = &strategy
	if vm.Annotations[vmv1alpha1.AnnotationRevoked] == "" {
		if vm.Annotations == nil {
			vm.Annotations = map[string]string{}
		}
		vm.Annotations[vmv1alpha1.AnnotationRevoked] = refusal.Message
	}
	if err := v.Client.Patch(ctx, vm, patch); err != nil {
		return false, fmt.Errorf("halt VirtualMachine %s/%s: %w", vm.Namespace, vm.Name, err)
	}
	return true, nil
}

// Restore removes the revoked mark of a VM the apply step has just given
// the profile's run strategy back.
func (v Revoker) Restore(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, vm *kubevirtv1.VirtualMachine) error {
	patch := client.MergeFrom(vm.DeepCopy())
	delete(vm.Annotations, vmv1alpha1.AnnotationRevoked)
	if err := v.Client.Patch(ctx, vm, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("unmark revoked VirtualMachine %s/%s: %w", vm.Namespace, vm.Name, err)
	}
	v.event(profile, vm, corev1.EventTypeNormal, vmv1alpha1.EventAccessRestored,
		"access to its host networks is restored: the VM runs with runStrategy %s again and its attachments are made again", profile.Spec.EffectiveRunStrategy())
	return nil
}

// DeleteNADs deletes the attachments the operator made for the profile
// that are not wanted (by name), and says how many. Only ours: a user's
// named attachment, or one of the same name made by someone else, is
// never touched.
func (v Revoker) DeleteNADs(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, wanted map[string]bool, why string) (int, error) {
	if !v.Multus {
		return 0, nil
	}
	var nads nadv1.NetworkAttachmentDefinitionList
	if err := v.Client.List(ctx, &nads, client.InNamespace(profile.Namespace), client.MatchingLabels(desired.OwnedLabels(profile))); err != nil {
		return 0, fmt.Errorf("list attachments of profile %s: %w", profile.Name, err)
	}
	deleted := 0
	for i := range nads.Items {
		nad := &nads.Items[i]
		if wanted[nad.Name] || owner.Of(nad, profile) != owner.Ours {
			continue
		}
		if err := v.Client.Delete(ctx, nad, client.Preconditions{UID: &nad.UID}); client.IgnoreNotFound(err) != nil {
			return deleted, fmt.Errorf("delete NetworkAttachmentDefinition %s: %w", nad.Name, err)
		}
		deleted++
		v.event(profile, nad, corev1.EventTypeNormal, vmv1alpha1.EventDeleted, "deleted NetworkAttachmentDefinition %s: %s", nad.Name, why)
	}
	return deleted, nil
}
