package profile

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
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
	nodes, err := placement.ReadNodes(ctx, r.Client, r.LeaseNamespace, r.now())
	if err != nil {
		return err
	}
	needs := placement.Requirements(observed.Attachments)
	r.Index.Set(client.ObjectKeyFromObject(profile), needs, placement.SelectorKeys(profile))
	result := placement.Evaluate(profile, needs, nodes, placement.Options{AllowEmulation: r.AllowEmulation})
	observed.Placement = &result.Status
	observed.Affinity = result.Placement
	if len(result.Eligible) == 0 {
		observed.Blockers = append(observed.Blockers, status.Wait(vmv1alpha1.ReasonNoEligibleNodes,
			"no node can host the VM; status.placement says why for each"))
		return nil
	}
	if profile.Spec.HighAvailability != nil && profile.Spec.HighAvailability.AntiAffinity {
		shortage, err := placement.SpreadShortage(ctx, r.Client, profile, result.Eligible)
		if err != nil {
			return err
		}
		observed.SpreadShortage = shortage
	}
	return nil
}

// explainRunningExclusion rewords the NoEligibleNodes wait of a VM that
// runs on a node placement now excludes (its bridge went down, its agent
// went silent): "no node can host the VM" would read as if it did not
// run. The VM is not touched; the status says its node no longer
// qualifies and why, until it does again.
func explainRunningExclusion(observed *status.Observed) {
	if observed.VMI == nil || observed.VMI.Status.NodeName == "" || observed.Placement == nil {
		return
	}
	node, why := observed.VMI.Status.NodeName, ""
	for _, excluded := range observed.Placement.Excluded {
		if excluded.Node == node {
			why = excluded.Reason
		}
	}
	if why == "" {
		return
	}
	for i := range observed.Blockers {
		if observed.Blockers[i].Reason == vmv1alpha1.ReasonNoEligibleNodes {
			observed.Blockers[i].Message = fmt.Sprintf("the VM keeps running on node %s, which no longer qualifies (%s); "+
				"no node could host it if it restarted: status.placement says why for each", node, why)
		}
	}
}
