package attach

import (
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// The keys below index profiles by what their networks look for, so that
// an event on a HostNetwork or an attachment wakes only the profiles it
// concerns.

// HostNetworkKeys are what a profile's networks look for in a HostNetwork:
// its name, its bridge, its SR-IOV resource, or being the default of a type.
// They depend on the profile alone, so a HostNetwork event finds every
// profile it may change, including those refused for want of one.
func HostNetworkKeys(p *vmv1alpha1.VirtualMachineProfile) []string {
	var keys []string
	for i := range p.Spec.Networks {
		network := &p.Spec.Networks[i]
		switch {
		case network.NADName != "":
			keys = append(keys, "named") // where a named attachment lands is only known from its config
		case network.HostNetwork != "":
			keys = append(keys, "name/"+network.HostNetwork)
		case network.Type == vmv1alpha1.NetworkTypeBridge || network.Type == vmv1alpha1.NetworkTypeOVS:
			keys = append(keys, "bridge/"+desired.BridgeName(network))
		case network.Type == vmv1alpha1.NetworkTypeSRIOV && network.SRIOV != nil && network.SRIOV.ResourceName != "":
			keys = append(keys, "resource/"+network.SRIOV.ResourceName)
		default:
			keys = append(keys, "default/"+string(network.Type))
		}
	}
	return keys
}

// KeysOfHostNetwork are the index values a HostNetwork answers to.
func KeysOfHostNetwork(h *vmv1alpha1.HostNetwork) []string {
	keys := []string{"name/" + h.Name, "named"}
	if h.Spec.BridgeName != "" {
		keys = append(keys, "bridge/"+h.Spec.BridgeName)
	}
	if h.Spec.SRIOV != nil {
		keys = append(keys, "resource/"+h.Spec.SRIOV.ResourceName)
	}
	if h.Spec.Default {
		keys = append(keys, "default/"+string(h.Spec.Type))
	}
	return keys
}

// NADKeys are the namespace/name keys of the attachments a profile's
// networks name (nadName).
func NADKeys(p *vmv1alpha1.VirtualMachineProfile) []string {
	var keys []string
	for i := range p.Spec.Networks {
		if p.Spec.Networks[i].NADName != "" {
			keys = append(keys, desired.NADKey(p, &p.Spec.Networks[i]).String())
		}
	}
	return keys
}
