package profile

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcileNetworks creates an attachment for each network without nadName,
// checks that the attachments named by nadName exist, and refuses a static
// address another profile already uses on the same network.
func (r *Reconciler) reconcileNetworks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	observed.Networks = status.Pass(vmv1alpha1.ReasonNetworksReady, fmt.Sprintf("%d network(s) attached", len(profile.Spec.Networks)))
	if conflict, err := r.staticIPConflict(ctx, profile, observed); err != nil || conflict != nil {
		if conflict != nil {
			observed.Networks = *conflict
		}
		return err
	}
	for i := range profile.Spec.Networks {
		check, err := r.reconcileNetwork(ctx, profile, &profile.Spec.Networks[i])
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
		return err
	}
	for i := range nads.Items {
		nad := &nads.Items[i]
		if wanted[nad.Name] || ownershipOf(nad, profile) != ours {
			continue
		}
		if err := r.Client.Delete(ctx, nad, client.Preconditions{UID: &nad.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete unused NetworkAttachmentDefinition %s: %w", nad.Name, err)
		}
		r.event(profile, corev1.EventTypeNormal, vmv1alpha1.EventDeleted, "deleted NetworkAttachmentDefinition %s: its network was removed", nad.Name)
	}
	return nil
}

func (r *Reconciler) reconcileNetwork(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) (*status.Check, error) {
	if network.NADName != "" {
		return r.checkExistingNAD(ctx, profile, network)
	}
	if !r.Deps.Multus {
		check := status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"network %s needs a NetworkAttachmentDefinition, but Multus (k8s.cni.cncf.io/v1) is not installed", network.Name)
		return &check, nil
	}
	nad, err := desired.NAD(profile, network, r.DefaultSRIOVResource)
	if err != nil {
		return nil, err
	}
	return r.apply(ctx, profile, nad)
}

// nadKey resolves nadName ("name" or "namespace/name") against the profile's namespace.
func nadKey(profile *vmv1alpha1.VirtualMachineProfile, nadName string) types.NamespacedName {
	if namespace, name, ok := strings.Cut(nadName, "/"); ok {
		return types.NamespacedName{Namespace: namespace, Name: name}
	}
	return types.NamespacedName{Namespace: profile.Namespace, Name: nadName}
}

func (r *Reconciler) checkExistingNAD(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) (*status.Check, error) {
	if !r.Deps.Multus {
		check := status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"network %s uses NetworkAttachmentDefinition %s, but Multus (k8s.cni.cncf.io/v1) is not installed", network.Name, network.NADName)
		return &check, nil
	}
	key := nadKey(profile, network.NADName)
	err := r.Client.Get(ctx, key, &nadv1.NetworkAttachmentDefinition{})
	if apierrors.IsNotFound(err) {
		check := status.Wait(vmv1alpha1.ReasonNADMissing,
			"network %s uses NetworkAttachmentDefinition %s, which does not exist in namespace %s", network.Name, key.Name, key.Namespace)
		return &check, nil
	}
	return nil, err
}

// segmentKey identifies the L2 segment a network joins, so that two
// profiles on the same segment can be checked for clashing static addresses.
func segmentKey(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) string {
	vlan := int32(0)
	if network.VLANID != nil {
		vlan = *network.VLANID
	}
	switch {
	case network.NADName != "":
		return "nad/" + nadKey(profile, network.NADName).String()
	case network.Type == vmv1alpha1.NetworkTypeMacvlan:
		return fmt.Sprintf("macvlan/%s/%d", network.Uplink, vlan)
	case network.Type == vmv1alpha1.NetworkTypeSRIOV:
		return fmt.Sprintf("sriov/%s/%d", desired.SRIOVResourceName(network, ""), vlan)
	default:
		return fmt.Sprintf("%s/%s/%d", network.Type, desired.BridgeName(network), vlan)
	}
}

// staticIPKeys are the index values of a profile's static addresses: segment and address.
func staticIPKeys(profile *vmv1alpha1.VirtualMachineProfile) []string {
	var keys []string
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		if network.IPConfig == nil || network.IPConfig.Mode != vmv1alpha1.IPModeStatic || network.IPConfig.Address == nil {
			continue
		}
		prefix, err := netip.ParsePrefix(*network.IPConfig.Address)
		if err != nil {
			continue // admission refuses these; nothing to compare
		}
		keys = append(keys, segmentKey(profile, network)+"|"+prefix.Addr().String())
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
// addresses on the same segment. The older one keeps the address; this one
// is refused. The message names the other profile only within the same
// namespace: other tenants' names are not this user's business.
func (r *Reconciler) staticIPConflict(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) (*status.Check, error) {
	keys := staticIPKeys(profile)
	for _, key := range keys {
		var users vmv1alpha1.VirtualMachineProfileList
		if err := r.Client.List(ctx, &users, client.MatchingFields{indexStaticIP: key}); err != nil {
			return nil, fmt.Errorf("list profiles using static address %s: %w", key, err)
		}
		for i := range users.Items {
			other := &users.Items[i]
			if other.UID == profile.UID || !other.DeletionTimestamp.IsZero() || !olderThan(other, profile) {
				continue
			}
			address := key[strings.LastIndex(key, "|")+1:]
			holder := "an older profile in another namespace"
			if other.Namespace == profile.Namespace {
				holder = "the older profile " + other.Name
			}
			check := status.Problem(vmv1alpha1.ReasonStaticIPConflict, "static address %s is already used on the same network by %s", address, holder)
			return &check, nil
		}
	}
	if wait := profile.CreationTimestamp.Add(staticIPSettle).Sub(r.now()); len(keys) > 0 && wait > 0 {
		observed.RecheckAfter = wait
		check := status.Settling(vmv1alpha1.ReasonStaticIPSettling,
			"waiting %s so that every profile created in the same second is seen before the static address is taken", staticIPSettle)
		return &check, nil
	}
	return nil, nil
}

// olderThan orders profiles by creation, then by UID, so exactly one of two
// clashing profiles wins, whatever their names.
func olderThan(a, b *vmv1alpha1.VirtualMachineProfile) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}
