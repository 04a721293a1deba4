package placement

import (
	"maps"
	"sort"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// MaxExcludedListed bounds the excluded nodes a profile's status lists.
const MaxExcludedListed = 10

// Result is where a profile may run.
type Result struct {
	// Eligible are the nodes that pass every check, sorted.
	Eligible []string
	// Status is the summary for the profile's status.
	Status vmv1alpha1.PlacementStatus
	// Placement is what the VM's required node affinity asks for.
	Placement desired.Placement
}

// Options adjust placement for a cluster.
type Options struct {
	// AllowEmulation drops the KVM requirement, for clusters whose KubeVirt
	// runs VMs in software emulation (useEmulation: true).
	AllowEmulation bool
}

// Evaluate runs the eligibility chain for a profile, which needs what needs
// lists (see Requirements), over nodes. The first failing check of each
// excluded node is its reason.
func Evaluate(profile *vmv1alpha1.VirtualMachineProfile, needs []Requirement, nodes []Node, options Options) Result {
	needs = effectiveNeeds(needs, options)
	selector := nodeSelector(profile)
	var result Result
	var excluded []vmv1alpha1.NodeExclusion
	for i := range nodes {
		// The node's verdict as Explain gives it, without the remedy.
		verdict := explainNode(&nodes[i], needs, selector, false)
		if verdict.Eligible {
			result.Eligible = append(result.Eligible, verdict.Node)
			continue
		}
		// The reason may carry the agent's own words (kvm.reason, a probe's
		// error, a policy's message), up to kilobytes; cut, ten of them
		// keep the status and its Scheduled message small.
		excluded = append(excluded, vmv1alpha1.NodeExclusion{Node: verdict.Node,
			Reason: vmv1alpha1.Truncate(verdict.Reason, vmv1alpha1.MaxExclusionReasonLength)})
	}
	sort.Strings(result.Eligible)
	sort.Slice(excluded, func(i, j int) bool { return excluded[i].Node < excluded[j].Node })
	result.Status = vmv1alpha1.PlacementStatus{
		EligibleNodes: int32(len(result.Eligible)),
		ExcludedNodes: int32(len(excluded)),
		Excluded:      excluded[:min(len(excluded), MaxExcludedListed)],
	}
	result.Placement = desired.Placement{RequiredNodeLabels: map[string]string{vmv1alpha1.LabelReporting: "true"}}
	for _, need := range needs {
		if need.Kind == NeedNodeLabels {
			maps.Copy(result.Placement.RequiredNodeLabels, need.Selector)
			continue
		}
		result.Placement.RequiredNodeLabels[need.Label] = "true"
	}
	return result
}

func nodeSelector(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	if profile.Spec.HighAvailability == nil {
		return nil
	}
	selector := map[string]string{}
	for k, v := range profile.Spec.HighAvailability.NodeSelector {
		selector[k] = string(v)
	}
	return selector
}
