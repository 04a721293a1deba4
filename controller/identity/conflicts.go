package identity

import (
	"context"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// Resolver resolves another profile's networks to their segments, as the
// profile reconciler resolves its own (attach.Reader does).
type Resolver interface {
	// Resolve says where the profile's networks attach, or why they are refused.
	Resolve(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) ([]desired.Attachment, *attach.Refusal, error)
	// Held says where a revoked profile's networks are still attached.
	Held(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) ([]desired.Attachment, error)
}

// Checker refuses a static address or MAC another profile keeps on the
// same segment. It reads profiles and VM instances from the cache by the
// indexes of this package.
type Checker struct {
	Client client.Reader
	// KubeVirt says whether VM instances exist to be read (and IndexLive is registered).
	KubeVirt bool
	// Networks resolves the other profiles found by value.
	Networks Resolver
	// Now is the clock.
	Now func() time.Time
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

// Conflicts refuses a static address or MAC another profile keeps on the
// same segment (see conflict), then waits out the settle window of a
// profile that chose its address or MAC.
func (c Checker) Conflicts(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment,
	observed *status.Observed) (*status.Check, error) {
	for _, id := range identities() {
		if conflict, err := c.conflict(ctx, profile, attachments, id); err != nil || conflict != nil {
			return conflict, err
		}
	}
	chosen := len(claimsOf(profile, attachments, staticIPIdentity())) > 0 ||
		slices.ContainsFunc(profile.Spec.Networks, func(n vmv1alpha1.NetworkConfig) bool { return n.MACAddress != "" })
	if wait := profile.CreationTimestamp.Add(staticIPSettle).Sub(c.Now()); chosen && wait > 0 {
		observed.RecheckAfter = wait
		check := status.Settling(vmv1alpha1.ReasonStaticIPSettling,
			"waiting %s so that every profile created in the same second is seen before the static address is taken", staticIPSettle)
		check.Brief = true
		return &check, nil
	}
	return nil, nil
}

// conflict finds another profile that keeps one of this profile's values
// on the same segment, however each reaches it (a named attachment, a
// generated one, the same HostNetwork and VLAN); this one is then refused.
// Who keeps it is decided by keeps. The message names the other profile
// only within the same namespace: other tenants' names are not this
// user's business.
func (c Checker) conflict(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, attachments []desired.Attachment,
	id identity) (*status.Check, error) {
	mine := claimsOf(profile, attachments, id)
	for _, segment := range slices.Sorted(maps.Keys(mine)) {
		claim := mine[segment]
		users, err := c.holdersOf(ctx, id, claim.value)
		if err != nil {
			return nil, err
		}
		for _, other := range users {
			if other.UID == profile.UID || !other.DeletionTimestamp.IsZero() {
				continue
			}
			theirs, err := c.claimsOfOther(ctx, other, id)
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
