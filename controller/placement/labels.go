package placement

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// NodeLabels projects a capability into the labels the node should carry
// (all "true"): KVM, every bridge that is up, the wanted VLANs the bridge
// passes, OVS bridges and links that are up, free SR-IOV VFs, and each
// declared host network the node offers. The same Offers rules decide
// labels and eligibility, so the scheduler and the status never disagree.
// Names that cannot form a label key are left out (placement then reports
// them as missing).
func NodeLabels(c *vmv1alpha1.NodeCapabilityStatus, wantedVLANs []Requirement, hostNetworks []HostNetworkOffer) map[string]string {
	out := map[string]string{}
	offer := func(need Requirement) {
		if ok, _ := Offers(c, need); ok && len(validation.IsQualifiedName(need.Label)) == 0 {
			out[need.Label] = "true"
		}
	}
	offer(Requirement{Label: LabelKVM, Kind: NeedKVM})
	offer(Requirement{Label: LabelSRIOV, Kind: NeedSRIOV})
	for _, b := range c.Bridges {
		offer(Requirement{Label: BridgeLabel(b.Name), Kind: NeedBridge, Name: b.Name})
	}
	for _, need := range wantedVLANs {
		offer(need)
	}
	for _, b := range c.OVSBridges {
		offer(Requirement{Label: OVSLabel(b.Name), Kind: NeedOVS, Name: b.Name})
	}
	for _, u := range c.Uplinks {
		offer(Requirement{Label: LinkLabel(u.Name), Kind: NeedLink, Name: u.Name})
	}
	for _, v := range c.VLANs {
		offer(Requirement{Label: LinkLabel(v.Name), Kind: NeedLink, Name: v.Name})
	}
	for _, b := range c.Bonds {
		offer(Requirement{Label: LinkLabel(b.Name), Kind: NeedLink, Name: b.Name})
	}
	for i := range hostNetworks {
		offer(Requirement{Label: HostNetworkLabel(hostNetworks[i].Name), Kind: NeedHostNetwork, Name: hostNetworks[i].Name, HostNetwork: &hostNetworks[i]})
	}
	return out
}

// Owned says whether a node label key is one the controller manages.
func Owned(key string) bool {
	return strings.HasPrefix(key, LabelPrefix)
}
