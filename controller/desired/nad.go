package desired

import (
	"encoding/json"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// cniVersion is understood by every CNI plugin the operator configures,
// and is the first with CHECK: under "0.3.1" libcni refuses to CHECK an
// attachment ("configuration version \"0.3.1\" does not support the CHECK
// command", TestNADsAsTheCNIPluginsRunThem), so a runtime could never
// verify one.
const cniVersion = "0.4.0"

// Attachment is how one network of a profile reaches the host, resolved
// against the HostNetworks an admin declared (or the user's own
// NetworkAttachmentDefinition): everything the attachment, the VM and
// placement need, as plain values.
type Attachment struct {
	Network *vmv1alpha1.NetworkConfig
	// Declared is the HostNetwork that declares the segment; nil when none does.
	Declared *vmv1alpha1.HostNetwork
	Type     vmv1alpha1.NetworkType
	// Bridge is the Linux or OVS bridge (bridge and ovs).
	Bridge string
	// Master is the macvlan master: the uplink or its VLAN sub-interface;
	// "" leaves it to the plugin (the default route's interface).
	Master string
	// VLAN is the tag of the VM's traffic; for macvlan it lives on the master.
	VLAN int32
	// MTU of the interface; 0 keeps the host default.
	MTU int32
	// ResourceName is the device-plugin resource of an SR-IOV network.
	ResourceName string
	// NAD is the NetworkAttachmentDefinition the VM uses.
	NAD types.NamespacedName
	// Named: the user's nadName, never written by the operator.
	Named bool
	// Segment names the L2 domain, however it is reached, for static address checks.
	Segment string
}

// HostNetworkName is the name of the declaring HostNetwork, or "".
func (a *Attachment) HostNetworkName() string {
	if a.Declared == nil {
		return ""
	}
	return a.Declared.Name
}

// emptyIPAM leaves addressing to the guest (cloud-init static config or
// DHCP on the segment): KubeVirt's bridge and SR-IOV bindings hand the link
// to the VM, so the pod must not take an address.
type emptyIPAM struct{}

// bridgeCNI is the config of the reference bridge plugin.
type bridgeCNI struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Bridge     string `json:"bridge"`
	VLAN       int32  `json:"vlan,omitempty"`
	// PreserveDefaultVLAN is false with a VLAN: the port then carries only
	// its own VLAN, not also VLAN 1 tagged, where untagged VMs live. The
	// plugin's default changed between releases, so it is said.
	PreserveDefaultVLAN *bool `json:"preserveDefaultVlan,omitempty"`
	// MACSpoofCheck drops frames from the VM's port whose source MAC is not
	// the interface's (nftables, bridge family).
	MACSpoofCheck bool      `json:"macspoofchk"`
	MTU           int32     `json:"mtu,omitempty"`
	IPAM          emptyIPAM `json:"ipam"`
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

// sriovCNI is the config of the SR-IOV CNI plugin. The VF's VLAN is set
// by the PF (the guest's own tags never reach the wire as its VLAN),
// spoof checking keeps it to its MAC, and an untrusted VF cannot turn on
// promiscuous mode or change its MAC.
type sriovCNI struct {
	CNIVersion string    `json:"cniVersion"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	VLAN       int32     `json:"vlan,omitempty"`
	SpoofCheck string    `json:"spoofchk"`
	Trust      string    `json:"trust"`
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

// CNIConfig is the CNI configuration of an attachment, as JSON.
func CNIConfig(name string, a Attachment) (string, error) {
	var config any
	switch a.Type {
	case vmv1alpha1.NetworkTypeBridge:
		config = bridgeCNI{CNIVersion: cniVersion, Name: name, Type: "bridge", Bridge: a.Bridge, VLAN: a.VLAN,
			PreserveDefaultVLAN: keepDefaultVLAN(a.VLAN), MACSpoofCheck: true, MTU: a.MTU}
	case vmv1alpha1.NetworkTypeMacvlan:
		// The VLAN lives on the master sub-interface; macvlan itself is untagged.
		config = macvlanCNI{CNIVersion: cniVersion, Name: name, Type: "macvlan", Master: a.Master, Mode: "bridge", MTU: a.MTU}
	case vmv1alpha1.NetworkTypeSRIOV:
		config = sriovCNI{CNIVersion: cniVersion, Name: name, Type: "sriov", VLAN: a.VLAN, SpoofCheck: "on", Trust: "off"}
	case vmv1alpha1.NetworkTypeOVS:
		config = ovsCNI{CNIVersion: cniVersion, Name: name, Type: "ovs", Bridge: a.Bridge, VLAN: a.VLAN, MTU: a.MTU}
	default:
		return "", errUnknownNetworkType(a.Network)
	}
	raw, err := json.Marshal(config)
	return string(raw), err
}

// keepDefaultVLAN is the bridge plugin's preserveDefaultVlan: false on a
// tagged port, unsaid on an untagged one (where it does nothing).
func keepDefaultVLAN(vlan int32) *bool {
	if vlan == 0 {
		return nil
	}
	keep := false
	return &keep
}

// NAD is the NetworkAttachmentDefinition of a network without nadName.
func NAD(profile *vmv1alpha1.VirtualMachineProfile, a Attachment) (*nadv1.NetworkAttachmentDefinition, error) {
	name := NADName(profile.Name, a.Network.Name)
	config, err := CNIConfig(name, a)
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
	if a.Type == vmv1alpha1.NetworkTypeSRIOV {
		nad.Annotations = map[string]string{vmv1alpha1.AnnotationResourceName: a.ResourceName}
	}
	return nad, nil
}
