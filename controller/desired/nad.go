package desired

import (
	"encoding/json"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// cniVersion is understood by every CNI plugin the operator configures.
const cniVersion = "0.3.1"

// emptyIPAM leaves addressing to the guest (cloud-init static config or
// DHCP on the segment): KubeVirt's bridge and SR-IOV bindings hand the link
// to the VM, so the pod must not take an address.
type emptyIPAM struct{}

// bridgeCNI is the config of the reference bridge plugin.
type bridgeCNI struct {
	CNIVersion string    `json:"cniVersion"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Bridge     string    `json:"bridge"`
	VLAN       int32     `json:"vlan,omitempty"`
	MTU        int32     `json:"mtu,omitempty"`
	IPAM       emptyIPAM `json:"ipam"`
}

// macvlanCNI is the config of the reference macvlan plugin.
type macvlanCNI struct {
	CNIVersion string    `json:"cniVersion"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Master     string    `json:"master,omitempty"`
	Mode       string    `json:"mode"`
	MTU        int32     `json:"mtu,omitempty"`
	IPAM       emptyIPAM `json:"ipam"`
}

// sriovCNI is the config of the SR-IOV CNI plugin.
type sriovCNI struct {
	CNIVersion string    `json:"cniVersion"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	VLAN       int32     `json:"vlan,omitempty"`
	IPAM       emptyIPAM `json:"ipam"`
}

// ovsCNI is the config of the OVS CNI plugin.
type ovsCNI struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Bridge     string `json:"bridge"`
	VLAN       int32  `json:"vlan,omitempty"`
	MTU        int32  `json:"mtu,omitempty"`
}

// MacvlanMaster is the host interface a macvlan network hangs off: the
// VLAN sub-interface of the uplink when a VLAN is set, else the uplink.
// Empty means the plugin's default (the interface of the default route).
func MacvlanMaster(network *vmv1alpha1.NetworkConfig) string {
	if network.Uplink == "" {
		return ""
	}
	if network.VLANID != nil {
		return VLANInterfaceName(network.Uplink, *network.VLANID)
	}
	return network.Uplink
}

// SRIOVResourceName is the device-plugin resource of an SR-IOV network:
// sriov.resourceName, else the operator's configured default.
func SRIOVResourceName(network *vmv1alpha1.NetworkConfig, defaultResource string) string {
	if network.SRIOV != nil && network.SRIOV.ResourceName != "" {
		return network.SRIOV.ResourceName
	}
	return defaultResource
}

// CNIConfig is the CNI configuration of a network, as JSON.
func CNIConfig(name string, network *vmv1alpha1.NetworkConfig) (string, error) {
	vlan := int32(0)
	if network.VLANID != nil {
		vlan = *network.VLANID
	}
	mtu := int32(0)
	if network.MTU != nil {
		mtu = *network.MTU
	}
	var config any
	switch network.Type {
	case vmv1alpha1.NetworkTypeBridge:
		config = bridgeCNI{CNIVersion: cniVersion, Name: name, Type: "bridge", Bridge: BridgeName(network), VLAN: vlan, MTU: mtu}
	case vmv1alpha1.NetworkTypeMacvlan:
		// With an uplink and a VLAN, the VLAN lives on the master
		// sub-interface; macvlan itself is untagged.
		config = macvlanCNI{CNIVersion: cniVersion, Name: name, Type: "macvlan", Master: MacvlanMaster(network), Mode: "bridge", MTU: mtu}
	case vmv1alpha1.NetworkTypeSRIOV:
		config = sriovCNI{CNIVersion: cniVersion, Name: name, Type: "sriov", VLAN: vlan}
	case vmv1alpha1.NetworkTypeOVS:
		config = ovsCNI{CNIVersion: cniVersion, Name: name, Type: "ovs", Bridge: BridgeName(network), VLAN: vlan, MTU: mtu}
	default:
		return "", errUnknownNetworkType(network)
	}
	raw, err := json.Marshal(config)
	return string(raw), err
}

// NAD is the NetworkAttachmentDefinition of a network without nadName.
func NAD(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig, defaultSRIOVResource string) (*nadv1.NetworkAttachmentDefinition, error) {
	name := NADName(profile.Name, network.Name)
	config, err := CNIConfig(name, network)
	if err != nil {
		return nil, err
	}
	nad := &nadv1.NetworkAttachmentDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: nadv1.SchemeGroupVersion.String(), Kind: "NetworkAttachmentDefinition"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       profile.Namespace,
			Labels:          OwnedLabels(profile),
			OwnerReferences: []metav1.OwnerReference{OwnerReference(profile)},
		},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
	if network.Type == vmv1alpha1.NetworkTypeSRIOV {
		nad.Annotations = map[string]string{AnnotationResourceName: SRIOVResourceName(network, defaultSRIOVResource)}
	}
	return nad, nil
}
