package profile

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcileNetworks resolves each network against the declared host
// networks (refusing what no HostNetwork allows), refuses a static address
// an older profile uses on the same segment, creates an attachment for each
// network without nadName, and checks that the named ones exist.
func (r *Reconciler) reconcileNetworks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	observed.Networks = status.Pass(vmv1alpha1.ReasonNetworksReady, fmt.Sprintf("%d network(s) attached", len(profile.Spec.Networks)))
	attachments, refusal, err := r.resolve(ctx, profile)
	if err != nil {
		return err
	}
	if refusal != nil {
		observed.Networks = status.Problem(refusal.Reason, "%s", refusal.Message)
		return nil
	}
	observed.Attachments = attachments
	if conflict, err := r.staticIPConflict(ctx, profile, attachments, observed); err != nil || conflict != nil {
		if conflict != nil {
			observed.Networks = *conflict
		}
		return err
	}
	for _, a := range attachments {
		check, err := r.reconcileAttachment(ctx, profile, a)
		if err != nil {
			return err
		}
		if check != nil {
			observed.Networks = *check
			return nil
		}
	}
	return r.removeUnusedNADs(ctx, profile)
}

// resolve reads what resolution needs from the cache and resolves.
func (r *Reconciler) resolve(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) ([]desired.Attachment, *attach.Refusal, error) {
	in, err := r.attachReader().Inputs(ctx, profile)
	if err != nil {
		return nil, nil, err
	}
	attachments, refusal := attach.Resolve(profile, in)
	return attachments, refusal, nil
}

func (r *Reconciler) attachReader() attach.Reader {
	return attach.Reader{Client: r.Client, Multus: r.Deps.Multus, Policy: r.Networks}
}

func (r *Reconciler) reconcileAttachment(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, a desired.Attachment) (*status.Check, error) {
	if !r.Deps.Multus {
		check := status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"network %s needs a NetworkAttachmentDefinition, but Multus (k8s.cni.cncf.io/v1) is not installed", a.Network.Name)
		return &check, nil
	}
	if a.Named {
		return r.checkNamedNAD(ctx, a)
	}
	nad, err := desired.NAD(profile, a)
	if err != nil {
		return nil, err
	}
	return r.apply(ctx, profile, nad)
}

func (r *Reconciler) checkNamedNAD(ctx context.Context, a desired.Attachment) (*status.Check, error) {
	err := r.Client.Get(ctx, a.NAD, &nadv1.NetworkAttachmentDefinition{})
	if apierrors.IsNotFound(err) {
		check := status.Wait(vmv1alpha1.ReasonNADMissing,
			"network %s uses NetworkAttachmentDefinition %s, which does not exist in namespace %s", a.Network.Name, a.NAD.Name, a.NAD.Namespace)
		return &check, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read NetworkAttachmentDefinition %s: %w", a.NAD, err)
	}
	return nil, nil
}

// removeUnusedNADs deletes the attachments the operator made for networks
// since removed from the profile (attachments hold no data).
func (r *Reconciler) removeUnusedNADs(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	if !r.Deps.Multus {
		return nil
	}
	wanted := map[string]bool{}
	for i := range profile.Spec.Networks {
		if profile.Spec.Networks[i].NADName == "" {
			wanted[desired.NADName(profile.Name, profile.Spec.Networks[i].Name)] = true
		}
	}
	var nads nadv1.NetworkAttachmentDefinitionList
	if err := r.Client.List(ctx, &nads, client.InNamespace(profile.Namespace), client.MatchingLabels(desired.OwnedLabels(profile))); err != nil {
		return fmt.Errorf("list attachments of profile %s: %w", profile.Name, err)
	}
	for i := range nads.Items {
		nad := &nads.Items[i]
		if wanted[nad.Name] || ownershipOf(nad, profile) != ours {
			continue
		}
		if err := r.Client.Delete(ctx, nad, client.Preconditions{UID: &nad.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete unused NetworkAttachmentDefinition %s: %w", nad.Name, err)
		}
		r.event(profile, nad, corev1.EventTypeNormal, vmv1alpha1.EventDeleted, "deleted NetworkAttachmentDefinition %s: its network was removed", nad.Name)
	}
	return nil
}

// staticAddresses are a profile's static addresses (without prefix), by network name.
func staticAddresses(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	out := map[string]string{}
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		if network.IPConfig == nil || network.IPConfig.Mode != vmv1alpha1.IPModeStatic || network.IPConfig.Address == nil {
			continue
		}
		prefix, err := netip.ParsePrefix(*network.IPConfig.Address)
		if err != nil {
			continue // admission refuses these; nothing to compare
		}
		out[network.Name] = prefix.Addr().String()
	}
	return out
}

// staticIPKeys are the index values of a profile's static addresses: the
// address alone. Which segment each is on depends on how the network
// resolves, so candidates found by address are resolved and compared.
func staticIPKeys(profile *vmv1alpha1.VirtualMachineProfile) []string {
	var keys []string
	for _, address := range staticAddresses(profile) {
		keys = append(keys, address)
	}
	return keys
}

// staticIPSettle is how long after its creation a profile with a static
// address waits before its VM is made. Creation times have one-second
// resolution and ties go to the lower UID, so a profile created in the same
// second as this one may be the older; after this window every such profile
// is in the cache (the watch delivers within milliseconds) and the check
// below decides for good: the loser never gets a VM.
const staticIPSettle = 2 * time.Second

// staticIPConflict finds an older profile using one of this profile's static
// addresses on the same segment, however each reaches it (a named
// attachment, a generated one, the same HostNetwork and VLAN). The older
// one keeps the address; this one is refused. The message names the other
// profile only within the same namespace: other tenants' names are not this
// user's business.
func (r *Reconciler) staticIPConflict(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment,
	observed *status.Observed) (*status.Check, error) {
	mine := segmentsOf(profile, attachments)
	for segment, address := range mine {
		var users vmv1alpha1.VirtualMachineProfileList
		if err := r.Client.List(ctx, &users, client.MatchingFields{indexStaticIP: address}); err != nil {
			return nil, fmt.Errorf("list profiles using static address %s: %w", address, err)
		}
		for i := range users.Items {
			other := &users.Items[i]
			if other.UID == profile.UID || !other.DeletionTimestamp.IsZero() || !olderThan(other, profile) {
				continue
			}
			theirs, err := r.segmentsOfOther(ctx, other)
			if err != nil {
				return nil, err
			}
			if theirs[segment] != address {
				continue
			}
			holder := "an older profile in another namespace"
			if other.Namespace == profile.Namespace {
				holder = "the older profile " + other.Name
			}
			check := status.Problem(vmv1alpha1.ReasonStaticIPConflict, "static address %s is already used on the same network by %s", address, holder)
			return &check, nil
		}
	}
	if wait := profile.CreationTimestamp.Add(staticIPSettle).Sub(r.now()); len(mine) > 0 && wait > 0 {
		observed.RecheckAfter = wait
		check := status.Settling(vmv1alpha1.ReasonStaticIPSettling,
			"waiting %s so that every profile created in the same second is seen before the static address is taken", staticIPSettle)
		check.Brief = true
		return &check, nil
	}
	return nil, nil
}

// segmentsOf maps each segment a profile has a static address on to that address.
func segmentsOf(profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment) map[string]string {
	addresses := staticAddresses(profile)
	out := map[string]string{}
	for _, a := range attachments {
		if address, ok := addresses[a.Network.Name]; ok {
			out[a.Segment] = address
		}
	}
	return out
}

// segmentsOfOther resolves another profile to learn its segments; one that
// is refused holds no address.
func (r *Reconciler) segmentsOfOther(ctx context.Context, other *vmv1alpha1.VirtualMachineProfile) (map[string]string, error) {
	attachments, refusal, err := r.resolve(ctx, other)
	if err != nil || refusal != nil {
		return nil, err
	}
	return segmentsOf(other, attachments), nil
}

// olderThan orders profiles by creation, then by UID, so exactly one of two
// clashing profiles wins, whatever their names.
func olderThan(a, b *vmv1alpha1.VirtualMachineProfile) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}
