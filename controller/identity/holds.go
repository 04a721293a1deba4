package identity

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// holdersOf are the profiles that may hold a value: those whose spec asks
// for it, and those whose living instance uses it.
func (c Checker) holdersOf(ctx context.Context, id identity, value string) ([]*vmv1alpha1.VirtualMachineProfile, error) {
	var list vmv1alpha1.VirtualMachineProfileList
	if err := c.Client.List(ctx, &list, client.MatchingFields{id.index: value}); err != nil {
		return nil, fmt.Errorf("list profiles using %s %s: %w", id.noun, value, err)
	}
	holders := make([]*vmv1alpha1.VirtualMachineProfile, 0, len(list.Items))
	seen := map[types.NamespacedName]bool{}
	for i := range list.Items {
		holders = append(holders, &list.Items[i])
		seen[client.ObjectKeyFromObject(&list.Items[i])] = true
	}
	if !c.KubeVirt {
		return holders, nil
	}
	var instances kubevirtv1.VirtualMachineInstanceList
	if err := c.Client.List(ctx, &instances, client.MatchingFields{IndexLive: value}); err != nil {
		return nil, fmt.Errorf("list VM instances using %s %s: %w", id.noun, value, err)
	}
	for i := range instances.Items {
		key := types.NamespacedName{Namespace: instances.Items[i].Namespace, Name: instances.Items[i].Labels[vmv1alpha1.LabelProfile]}
		if key.Name == "" || seen[key] {
			continue
		}
		seen[key] = true
		var holder vmv1alpha1.VirtualMachineProfile
		if err := c.Client.Get(ctx, key, &holder); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return nil, fmt.Errorf("read profile %s: %w", key, err)
			}
			continue
		}
		holders = append(holders, &holder)
	}
	return holders, nil
}

// claimsOfOther resolves another profile to learn its segments and the
// values it claims there: those of its spec, and those its living
// instance uses (running). A revoked profile whose instance still lives
// holds them on the segments the instance is attached to until the
// instance is gone (its guest still answers there), its spec's values as
// running too; any other refused profile holds nothing.
func (c Checker) claimsOfOther(ctx context.Context, other *vmv1alpha1.VirtualMachineProfile, id identity) (map[string][]claim, error) {
	attachments, refusal, err := c.Networks.Resolve(ctx, other)
	if err != nil {
		return nil, err
	}
	if refusal != nil && !refusal.Revokes {
		return nil, nil
	}
	vmi, err := c.liveInstance(ctx, other)
	if err != nil {
		return nil, err
	}
	held := refusal != nil
	if held {
		if vmi == nil {
			return nil, nil
		}
		if attachments, err = c.Networks.Held(ctx, other); err != nil {
			return nil, err
		}
	}
	out := map[string][]claim{}
	for segment, spec := range claimsOf(other, attachments, id) {
		spec.running = held
		out[segment] = append(out[segment], spec)
	}
	if vmi == nil {
		return out, nil
	}
	live := id.live(vmi)
	for _, a := range attachments {
		for _, value := range live[a.Network.Name] {
			out[a.Segment] = append(out[a.Segment], claim{network: a.Network.Name, value: value, running: true})
		}
	}
	return out, nil
}

// matching finds the claim of value, preferring one a living instance runs with.
func matching(claims []claim, value string) (claim, bool) {
	var found *claim
	for i := range claims {
		if claims[i].value == value && (found == nil || claims[i].running) {
			found = &claims[i]
		}
	}
	if found == nil {
		return claim{}, false
	}
	return *found, true
}

// liveInstance reads the profile's VM instance; nil when there is none.
func (c Checker) liveInstance(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (*kubevirtv1.VirtualMachineInstance, error) {
	if !c.KubeVirt {
		return nil, nil
	}
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	var vmi kubevirtv1.VirtualMachineInstance
	if err := c.Client.Get(ctx, key, &vmi); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("read VirtualMachineInstance %s: %w", key, err)
		}
		return nil, nil
	}
	return &vmi, nil
}
