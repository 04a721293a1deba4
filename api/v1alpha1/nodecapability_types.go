package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KVMStatus is what the node's /dev/kvm offers.
type KVMStatus struct {
	// available is true when the kernel offers /dev/kvm on this node: its kvm
	// misc device (10:232) is registered in sysfs. The agent takes no device
	// unit; where it can open the device node anyway, the node must also
	// answer the expected API version.
	Available bool `json:"available"`
	// apiVersion answered by the KVM_GET_API_VERSION ioctl (12 on every
	// current kernel); absent when the agent could not open the device node,
	// as in the chart, where availability comes from sysfs alone.
	// +optional
	APIVersion int32 `json:"apiVersion,omitempty"`
	// nested is true when the kvm_intel or kvm_amd module allows nested virtualisation.
	// +optional
	Nested bool `json:"nested,omitempty"`
	// vendor is intel or amd when the CPU advertises vmx or svm; empty when it advertises neither.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Vendor string `json:"vendor,omitempty"`
	// reason explains why KVM is not available (no misc device and which
	// module or CPU flag is missing, or a device answering a wrong API version).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// BridgePort is one port of a Linux bridge.
type BridgePort struct {
	// name of the port's interface.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// up is true when the port is administratively up and has carrier.
	Up bool `json:"up"`
	// vlans allowed on the port, as a sorted list of ids and ranges such as
	// "1,100,200-210"; empty when the bridge does not filter VLANs.
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	VLANs string `json:"vlans,omitempty"`
	// pvid is the port's untagged VLAN, when it has one.
	// +optional
	PVID int32 `json:"pvid,omitempty"`
}

// BridgeStatus is one Linux bridge on the node.
type BridgeStatus struct {
	// name of the bridge.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// up is true when the bridge is administratively and operationally up.
	Up bool `json:"up"`
	// vlanFiltering is true when the bridge filters by VLAN (trunk ports).
	// +optional
	VLANFiltering bool `json:"vlanFiltering,omitempty"`
	// mtu of the bridge.
	// +optional
	MTU int32 `json:"mtu,omitempty"`
	// ports of the bridge that belong to the node: uplinks, bonds, VLAN
	// interfaces, tunnels, veths whose peer is on the host. A VM's own port
	// (a tap, or the host end of a veth whose peer is in a pod) is left
	// out, so that VMs starting and stopping do not rewrite this status.
	// +optional
	// +listType=atomic
	Ports []BridgePort `json:"ports,omitempty"`
}

// VLANInterface is one 802.1Q VLAN interface on the node.
type VLANInterface struct {
	// name of the interface, for example eth1.100.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// id is the VLAN tag.
	ID int32 `json:"id"`
	// parent is the interface the VLAN rides on.
	// +kubebuilder:validation:MaxLength=15
	Parent string `json:"parent"`
	// up is true when the interface is up.
	Up bool `json:"up"`
}

// BondStatus is one bond on the node.
type BondStatus struct {
	// name of the bond.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// mode, for example active-backup or 802.3ad.
	// +kubebuilder:validation:MaxLength=32
	Mode string `json:"mode"`
	// up is true when the bond is up.
	Up bool `json:"up"`
	// members are the bonded interfaces.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:items:MaxLength=15
	Members []string `json:"members,omitempty"`
	// activeMember is the member carrying traffic in active-backup mode.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	ActiveMember string `json:"activeMember,omitempty"`
}

// OVSBridgeStatus is one Open vSwitch bridge on the node.
type OVSBridgeStatus struct {
	// name of the bridge.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// up is true when the bridge's interface is up.
	Up bool `json:"up"`
}

// UplinkStatus is one physical NIC or bond that VM networks may ride on.
type UplinkStatus struct {
	// name of the interface.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// up is true when the interface is administratively up.
	Up bool `json:"up"`
	// carrier is true when the link has carrier.
	Carrier bool `json:"carrier"`
	// speedMbps is the negotiated link speed; 0 when unknown.
	// +optional
	SpeedMbps int32 `json:"speedMbps,omitempty"`
	// mtu of the interface.
	// +optional
	MTU int32 `json:"mtu,omitempty"`
}

// SRIOVPF is one SR-IOV physical function on the node.
type SRIOVPF struct {
	// name of the PF's network interface.
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`
	// pciAddress of the PF, for example 0000:3b:00.0.
	// +kubebuilder:validation:MaxLength=32
	PCIAddress string `json:"pciAddress"`
	// driver bound to the PF.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Driver string `json:"driver,omitempty"`
	// totalVFs the device supports.
	TotalVFs int32 `json:"totalVFs"`
	// numVFs currently created.
	NumVFs int32 `json:"numVFs"`
	// vfsInUse are VFs bound to a VM-facing driver (vfio-pci) or moved out of the host namespace.
	VFsInUse int32 `json:"vfsInUse"`
	// linkUp is the PF's link state.
	LinkUp bool `json:"linkUp"`
}

// PolicyVerification compares what nmstate claims for one policy with what the kernel shows.
type PolicyVerification struct {
	// name of the NodeNetworkConfigurationPolicy.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// enactment is the state nmstate's enactment reports for this node, for example Available or Failing.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Enactment string `json:"enactment,omitempty"`
	// kernel summarises what the kernel shows for the policy's interfaces.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Kernel string `json:"kernel,omitempty"`
	// verified is true when the kernel matches the policy's desired state.
	Verified bool `json:"verified"`
	// message explains a mismatch, for example "nmstate reports Available but bridge br-mgmt does not exist".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// NodeCapabilityStatus is everything the agent found on its node.
//
// The agent keeps a NodeCapability within 1 MiB as stored (a third below
// etcd's 1.5 MiB limit): a node with a bridge for each of the 4,094 VLANs
// and a trunk carrying all of them takes about 0.6 MiB. Beyond the bound
// it leaves the last entries of its longest lists out and says which in
// the Truncated condition. The lists are atomic: the agent is their only
// writer and replaces them whole, and per-entry managedFields would take
// more room than the entries themselves.
type NodeCapabilityStatus struct {
	// kvm is the state of hardware virtualisation.
	// +optional
	KVM *KVMStatus `json:"kvm,omitempty"`
	// bridges are the node's Linux bridges.
	// +optional
	// +listType=atomic
	Bridges []BridgeStatus `json:"bridges,omitempty"`
	// vlans are the node's 802.1Q VLAN interfaces.
	// +optional
	// +listType=atomic
	VLANs []VLANInterface `json:"vlans,omitempty"`
	// bonds are the node's bonds.
	// +optional
	// +listType=atomic
	Bonds []BondStatus `json:"bonds,omitempty"`
	// ovsBridges are the node's Open vSwitch bridges.
	// +optional
	// +listType=atomic
	OVSBridges []OVSBridgeStatus `json:"ovsBridges,omitempty"`
	// uplinks are the physical NICs and bonds VM networks may ride on.
	// +optional
	// +listType=atomic
	Uplinks []UplinkStatus `json:"uplinks,omitempty"`
	// sriov lists the SR-IOV physical functions.
	// +optional
	// +listType=atomic
	SRIOV []SRIOVPF `json:"sriov,omitempty"`
	// policies compares each NodeNetworkConfigurationPolicy selecting this node with the kernel.
	// +optional
	// +listType=atomic
	Policies []PolicyVerification `json:"policies,omitempty"`
	// conditions: Ready (True only when every probe fully succeeded),
	// KVMReady, NetworkReady, and one per probe: LinksProbed,
	// BridgeVLANsProbed, SRIOVProbed. A probe that failed keeps its last
	// good data in this status; its condition says so. Truncated appears
	// only when entries were left out to keep within the size bound.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodeCapability is what one node can offer VMs, as its vmop-agent found it in
// the kernel. There is one per node, named after the node and owned by the
// Node object; the agent is its only writer and writes only on change.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nodecap,categories=vmoperator
// +kubebuilder:printcolumn:name="KVM",type=string,JSONPath=`.status.conditions[?(@.type=="KVMReady")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Bridges",type=string,JSONPath=`.status.bridges[*].name`
// +kubebuilder:printcolumn:name="SR-IOV VFs",type=string,JSONPath=`.status.sriov[*].numVFs`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeCapability struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is what the agent found; there is no spec.
	// +optional
	Status NodeCapabilityStatus `json:"status,omitempty"`
}

// NodeCapabilityList is a list of NodeCapability.
//
// +kubebuilder:object:root=true
type NodeCapabilityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeCapability `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodeCapability{}, &NodeCapabilityList{})
}
