package placement

import (
	"strings"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// NodeLabels projects a capability into the labels the node should carry
// (all "true"), for what is asked of nodes only: KVM, free SR-IOV VFs,
// each declared host network the node offers, and, of the bridges, VLANs,
// OVS bridges and links, those in wanted (the index's: what some profile
// needs) that the node offers. A node is never labelled for each of its
// NICs, VLAN interfaces and bridges: with a bridge per VLAN that would be
// thousands of labels on the Node. The rules of the eligibility
// chain decide labels and eligibility alike, so the scheduler and the
// status never disagree: nothing whose probe failed is labelled (its
// report is stale), and names that cannot form a label key are left out
// (Evaluate then excludes every node for them: FuzzNodeLabels checks both).
func NodeLabels(c *vmv1alpha1.NodeCapabilityStatus, wanted []Requirement, hostNetworks []HostNetworkOffer) map[string]string {
	out := map[string]string{}
	offer := func(need Requirement) {
		if offeredHere(c, need) {
			out[need.Label] = "true"
		}
	}
	offer(Requirement{Label: vmv1alpha1.LabelKVM, Kind: NeedKVM})
	offer(Requirement{Label: vmv1alpha1.LabelSRIOV, Kind: NeedSRIOV})
	for _, need := range WantedLabels(wanted) {
		offer(need)
	}
	for i := range hostNetworks {
		offer(Requirement{Label: HostNetworkLabel(hostNetworks[i].Name), Kind: NeedHostNetwork, Name: hostNetworks[i].Name, HostNetwork: &hostNetworks[i]})
	}
	return out
}

// Owned says whether a node label key is one the controller manages.
func Owned(key string) bool {
	return strings.HasPrefix(key, vmv1alpha1.CapabilityLabelPrefix)
}
