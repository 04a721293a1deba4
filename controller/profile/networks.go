package profile

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcileNetworks resolves each network against the declared host
// networks (refusing what no HostNetwork allows), refuses a static address
// or MAC another profile keeps on the same segment, creates an attachment for each
// network without nadName, and checks that the named ones exist.
func (r *Reconciler) reconcileNetworks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	observed.Networks = status.Pass(vmv1alpha1.ReasonNetworksReady, fmt.Sprintf("%d network(s) attached", len(profile.Spec.Networks)))
	attachments, refusal, err := r.resolve(ctx, profile)
	if err != nil {
		return err
	}
	if refusal != nil {
		return r.revoke(ctx, profile, refusal, observed)
	}
	observed.Attachments = attachments
	if conflict, err := r.identityConflicts(ctx, profile, attachments, observed); err != nil || conflict != nil {
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
	wanted := map[string]bool{}
	for i := range profile.Spec.Networks {
		if profile.Spec.Networks[i].NADName == "" {
			wanted[desired.NADName(profile.Name, profile.Spec.Networks[i].Name)] = true
		}
	}
	_, err := r.deleteNADs(ctx, profile, wanted, "its network was removed")
	return err
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

// macAddresses are a profile's guest MACs (set or generated, lowercase), by network name.
func macAddresses(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	out := map[string]string{}
	for i := range profile.Spec.Networks {
		out[profile.Spec.Networks[i].Name] = desired.MACAddress(profile, &profile.Spec.Networks[i])
	}
	return out
}

// identity is something a network claims on its segment that no other
// profile may claim there: a static address, a MAC.
type identity struct {
	// noun names it in messages.
	noun string
	// reason is the condition reason of a clash.
	reason string
	// index is the profile field index holding its values.
	index string
	// of maps network name to the value each network claims.
	of func(*vmv1alpha1.VirtualMachineProfile) map[string]string
	// shown is the value a network's status reports in use.
	shown func(vmv1alpha1.NetworkStatus) string
	// live maps network name to the values a running instance uses.
	live func(*kubevirtv1.VirtualMachineInstance) map[string][]string
}

func staticIPIdentity() identity {
	return identity{noun: "static address", reason: vmv1alpha1.ReasonStaticIPConflict, index: indexStaticIP, of: staticAddresses,
		shown: func(s vmv1alpha1.NetworkStatus) string {
			if prefix, err := netip.ParsePrefix(s.IPAddress); err == nil {
				return prefix.Addr().String()
			}
			return s.IPAddress
		},
		live: func(vmi *kubevirtv1.VirtualMachineInstance) map[string][]string {
			out := map[string][]string{}
			for _, iface := range vmi.Status.Interfaces {
				for _, ip := range append([]string{iface.IP}, iface.IPs...) {
					if addr, err := netip.ParseAddr(ip); err == nil {
						out[iface.Name] = append(out[iface.Name], addr.String())
					} else if prefix, err := netip.ParsePrefix(ip); err == nil {
						out[iface.Name] = append(out[iface.Name], prefix.Addr().String())
					}
				}
			}
			return out
		}}
}

func macIdentity() identity {
	return identity{noun: "MAC address", reason: vmv1alpha1.ReasonMACConflict, index: indexMAC, of: macAddresses,
		shown: func(s vmv1alpha1.NetworkStatus) string { return strings.ToLower(s.MACAddress) },
		live: func(vmi *kubevirtv1.VirtualMachineInstance) map[string][]string {
			out := map[string][]string{}
			for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
				if iface.MacAddress != "" {
					out[iface.Name] = append(out[iface.Name], strings.ToLower(iface.MacAddress))
				}
			}
			for _, iface := range vmi.Status.Interfaces {
				if iface.MAC != "" {
					out[iface.Name] = append(out[iface.Name], strings.ToLower(iface.MAC))
				}
			}
			return out
		}}
}

func identities() []identity { return []identity{staticIPIdentity(), macIdentity()} }

// indexKeys are the index values of an identity: the value alone. Which
// segment each is on depends on how the network resolves, so candidates
// found by value are resolved and compared.
func indexKeys(id identity) func(*vmv1alpha1.VirtualMachineProfile) []string {
	return func(profile *vmv1alpha1.VirtualMachineProfile) []string {
		var keys []string
		for _, value := range id.of(profile) {
			if !slices.Contains(keys, value) {
				keys = append(keys, value)
			}
		}
		return keys
	}
}

// staticIPSettle is how long after its creation a profile with a static
// address (or a MAC set by hand) waits before its VM is made. Creation
// times have one-second resolution and ties go to the lower UID, so a
// profile created in the same second as this one may be the older; after
// this window every such profile is in the cache (the watch delivers within
// milliseconds) and the check below decides for good: the loser never gets
// a VM. Generated MACs hash namespace, profile and network name, so they
// do not clash by chance and need no wait.
const staticIPSettle = 2 * time.Second

// identityConflicts refuses a static address or MAC another profile keeps
// on the same segment (see identityConflict), then waits out the settle
// window of a profile that chose its address or MAC.
func (r *Reconciler) identityConflicts(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment,
	observed *status.Observed) (*status.Check, error) {
	for _, id := range identities() {
		if conflict, err := r.identityConflict(ctx, profile, attachments, id); err != nil || conflict != nil {
			return conflict, err
		}
	}
	chosen := len(claimsOf(profile, attachments, staticIPIdentity())) > 0 ||
		slices.ContainsFunc(profile.Spec.Networks, func(n vmv1alpha1.NetworkConfig) bool { return n.MACAddress != "" })
	if wait := profile.CreationTimestamp.Add(staticIPSettle).Sub(r.now()); chosen && wait > 0 {
		observed.RecheckAfter = wait
		check := status.Settling(vmv1alpha1.ReasonStaticIPSettling,
			"waiting %s so that every profile created in the same second is seen before the static address is taken", staticIPSettle)
		check.Brief = true
		return &check, nil
	}
	return nil, nil
}

// identityConflict finds another profile that keeps one of this profile's
// values on the same segment, however each reaches it (a named attachment,
// a generated one, the same HostNetwork and VLAN); this one is then
// refused. Who keeps it is decided by keeps. The message names the other
// profile only within the same namespace: other tenants' names are not
// this user's business.
func (r *Reconciler) identityConflict(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment,
	id identity) (*status.Check, error) {
	mine := claimsOf(profile, attachments, id)
	for _, segment := range slices.Sorted(maps.Keys(mine)) {
		claim := mine[segment]
		users, err := r.holdersOf(ctx, id, claim.value)
		if err != nil {
			return nil, err
		}
		for _, other := range users {
			if other.UID == profile.UID || !other.DeletionTimestamp.IsZero() {
				continue
			}
			theirs, err := r.claimsOfOther(ctx, other, id)
			if err != nil {
				return nil, err
			}
			their, found := matching(theirs[segment], claim.value)
			if !found {
				continue
			}
			otherRuns, selfRuns := their.running || runsWith(other, their, id), runsWith(profile, claim, id)
			if !keeps(other, profile, otherRuns, selfRuns) {
				continue
			}
			check := status.Problem(id.reason, "%s %s is already used on the same network by %s", id.noun, claim.value, holderOf(other, profile, !olderThan(other, profile)))
			return &check, nil
		}
	}
	return nil, nil
}

// keeps says whether other keeps a value both claim on a segment, against
// profile. A profile whose VM runs with it keeps it against one whose VM
// does not: editing a profile onto an address or MAC in use never takes it
// from the running VM. Otherwise the older profile keeps it, so exactly
// one of two wins whatever their names.
func keeps(other, profile *vmv1alpha1.VirtualMachineProfile, otherRuns, profileRuns bool) bool {
	if otherRuns != profileRuns {
		return otherRuns
	}
	return olderThan(other, profile)
}

// runsWith says whether a profile's VM runs with the value on the network:
// its status, as last written, shows the VM running, the network admitted
// (a refused profile holds nothing) and the value in use. A profile just
// edited onto a new value still shows the old one, so it does not run with
// the new.
func runsWith(profile *vmv1alpha1.VirtualMachineProfile, c claim, id identity) bool {
	if profile.Status.Phase != vmv1alpha1.PhaseRunning || !meta.IsStatusConditionTrue(profile.Status.Conditions, vmv1alpha1.ConditionNetworksConfigured) {
		return false
	}
	return slices.ContainsFunc(profile.Status.Networks, func(s vmv1alpha1.NetworkStatus) bool {
		return s.Name == c.network && id.shown(s) == c.value
	})
}

// holderOf describes who keeps the value, naming it only within the same
// namespace: the older profile, or the running one when it keeps the value
// although younger (keeps has no other reason for that).
func holderOf(other, profile *vmv1alpha1.VirtualMachineProfile, byRunning bool) string {
	article, adjective := "an", "older"
	if byRunning {
		article, adjective = "a", "running"
	}
	if other.Namespace == profile.Namespace {
		return "the " + adjective + " profile " + other.Name
	}
	return article + " " + adjective + " profile in another namespace"
}

// claim is the value one network of a profile claims on its segment.
type claim struct {
	network, value string
	// running: a living instance of the profile uses it (holds.go).
	running bool
}

// claimsOf maps each segment a profile claims a value of id on to the claim.
func claimsOf(profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment, id identity) map[string]claim {
	values := id.of(profile)
	out := map[string]claim{}
	for _, a := range attachments {
		if value, ok := values[a.Network.Name]; ok {
			out[a.Segment] = claim{network: a.Network.Name, value: value}
		}
	}
	return out
}

// olderThan orders profiles by creation, then by UID, so exactly one of two
// clashing profiles wins, whatever their names.
func olderThan(a, b *vmv1alpha1.VirtualMachineProfile) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}
