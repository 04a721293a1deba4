package profile

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcilePlacement decides which nodes can host the VM from their
// capabilities, gives the VM a required node affinity on exactly the labels
// it needs, and holds the VM while no node qualifies, with each excluded
// node's reason in status.placement.
func (r *Reconciler) reconcilePlacement(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	if !r.Deps.KubeVirt {
		return nil // no VM to place
	}
	nodes, err := r.placementNodes(ctx)
	if err != nil {
		return err
	}
	needs := placement.Requirements(observed.Attachments)
	r.Index.Set(client.ObjectKeyFromObject(profile), needs, selectorKeys(profile))
	result := placement.Evaluate(profile, needs, nodes, placement.Options{AllowEmulation: r.AllowEmulation})
	observed.Placement = &result.Status
	observed.Affinity = result.Placement
	if len(result.Eligible) == 0 {
		observed.Blockers = append(observed.Blockers, status.Wait(vmv1alpha1.ReasonNoEligibleNodes,
			"no node can host the VM; status.placement says why for each"))
		return nil
	}
	if profile.Spec.HighAvailability != nil && profile.Spec.HighAvailability.AntiAffinity {
		shortage, err := r.spreadShortage(ctx, profile, result.Eligible)
		if err != nil {
			return err
		}
		observed.SpreadShortage = shortage
	}
	return nil
}

// placementNodes reads every node with its capability and agent liveness from the cache.
func (r *Reconciler) placementNodes(ctx context.Context) ([]placement.Node, error) {
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	var capabilities vmv1alpha1.NodeCapabilityList
	if err := r.Client.List(ctx, &capabilities); err != nil {
		return nil, fmt.Errorf("list NodeCapabilities: %w", err)
	}
	var leases coordinationv1.LeaseList
	if err := r.Client.List(ctx, &leases, client.InNamespace(r.LeaseNamespace)); err != nil {
		return nil, fmt.Errorf("list agent Leases in %s: %w", r.LeaseNamespace, err)
	}
	byName := make(map[string]*vmv1alpha1.NodeCapabilityStatus, len(capabilities.Items))
	for i := range capabilities.Items {
		byName[capabilities.Items[i].Name] = &capabilities.Items[i].Status
	}
	expiry := make(map[string]time.Time, len(leases.Items))
	for i := range leases.Items {
		expiry[leases.Items[i].Name] = agentlease.Expiry(&leases.Items[i])
	}
	now := r.now()
	out := make([]placement.Node, 0, len(nodes.Items))
	for i := range nodes.Items {
		node := &nodes.Items[i]
		silent := time.Duration(0)
		until, reported := expiry[node.Name]
		switch {
		case !reported || until.IsZero():
			silent = max(now.Sub(node.CreationTimestamp.Time), time.Second) // never reported
		case !now.Before(until):
			silent = max(now.Sub(until), time.Second)
		}
		out = append(out, placement.Node{Name: node.Name, Labels: node.Labels, Unschedulable: node.Spec.Unschedulable,
			Capability: byName[node.Name], SilentFor: silent})
	}
	return out, nil
}

// spreadShortage explains when every eligible node already runs a VM of
// another profile with antiAffinity, so this one cannot be placed.
func (r *Reconciler) spreadShortage(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, eligible []string) (string, error) {
	var instances kubevirtv1.VirtualMachineInstanceList
	if err := r.Client.List(ctx, &instances, client.MatchingLabels{desired.LabelSpread: "true"}); err != nil {
		return "", fmt.Errorf("profile %s: list spread VirtualMachineInstances: %w", client.ObjectKeyFromObject(profile), err)
	}
	taken := map[string]bool{}
	for i := range instances.Items {
		vmi := &instances.Items[i]
		mine := vmi.Namespace == profile.Namespace && vmi.Labels[desired.LabelProfile] == profile.Name
		if !mine && vmi.Status.NodeName != "" {
			taken[vmi.Status.NodeName] = true
		}
	}
	for _, node := range eligible {
		if !taken[node] {
			return "", nil
		}
	}
	return fmt.Sprintf("antiAffinity needs a node without another spreading VM, but all %d eligible node(s) run one", len(eligible)), nil
}

// selectorKeys are the node label keys the profile's own nodeSelector uses.
func selectorKeys(profile *vmv1alpha1.VirtualMachineProfile) []string {
	if profile.Spec.HighAvailability == nil {
		return nil
	}
	keys := make([]string, 0, len(profile.Spec.HighAvailability.NodeSelector))
	for key := range profile.Spec.HighAvailability.NodeSelector {
		keys = append(keys, key)
	}
	return keys
}
