package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BondMode is a Linux bonding mode, as nmstate names it.
// +kubebuilder:validation:Enum=balance-rr;active-backup;balance-xor;broadcast;802.3ad;balance-tlb;balance-alb
type BondMode string

// Bond is a bond of NICs the operator builds as a managed network's uplink.
type Bond struct {
	// name of the bond interface, for example bond0.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')",message="bond name must be a Linux interface name"
	Name string `json:"name"`
	// mode of the bond.
	Mode BondMode `json:"mode"`
	// ports are the NICs bonded together.
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`
	Ports []string `json:"ports"`
}

// Uplink is the NIC or bond that carries a host network off the node (for
// sriov: the physical function), on the nodes its selector picks.
//
// +kubebuilder:validation:XValidation:rule="has(self.interface) != has(self.bond)",message="set exactly one of interface and bond"
type Uplink struct {
	// name of the uplink group. Its policy is vmop-<hostnetwork>.<name>
	// (a hash of the name when that is longer than 63 characters), so an
	// edit of the group's selector or interface updates the same policy.
	// Unset: vmop-<hostnetwork> for a network with one uplink, and a hash of
	// the nodeSelector with several (then a selector edit replaces the
	// policy; the host is kept either way).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`
	// nodeSelector picks the nodes this uplink applies to, for node groups
	// whose NICs are named differently. It may be left out when there is one
	// uplink; with several, each needs one and no node may match two.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// interface is the name of an existing NIC or bond, for example eth1.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')",message="interface must be a Linux interface name: 1 to 15 letters, digits, '-', '_' or '.'"
	Interface string `json:"interface,omitempty"`
	// bond is a bond the operator builds from NICs (managed networks only).
	// +optional
	Bond *Bond `json:"bond,omitempty"`
}

// VLANRange is a VLAN id ("100") or an inclusive range of ids ("200-210"), 1 to 4094.
// +kubebuilder:validation:MaxLength=9
// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,4}(-[0-9]{1,4})?$') && int(self.split('-')[0]) >= 1 && int(self.split('-')[self.split('-').size()-1]) <= 4094 && int(self.split('-')[0]) <= int(self.split('-')[self.split('-').size()-1])",message="must be a VLAN id or range such as 100 or 200-210, within 1 to 4094, the range's start not above its end"
type VLANRange string

// UntaggedPolicy says whether attachments without a VLAN may use a host
// network that has allowedVLANs.
// +kubebuilder:validation:Enum=Allowed;Refused
type UntaggedPolicy string

// Untagged policies.
const (
	// UntaggedAllowed admits untagged attachments next to the allowed VLANs.
	UntaggedAllowed UntaggedPolicy = "Allowed"
	// UntaggedRefused keeps every attachment on an allowed VLAN.
	UntaggedRefused UntaggedPolicy = "Refused"
)

// HostSRIOV configures an SR-IOV physical function.
type HostSRIOV struct {
	// numVFs is how many virtual functions the PF offers (nmstate's
	// ethernet.sr-iov.total-vfs), set when the network is managed.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	NumVFs *int32 `json:"numVFs,omitempty"`
	// resourceName is the device-plugin resource that hands out this PF's
	// VFs, for example intel.com/sriov_netdevice.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:XValidation:rule="!format.qualifiedName().validate(self).hasValue() && self.contains('/')",message="resourceName must be a device-plugin resource name such as intel.com/sriov_netdevice"
	ResourceName string `json:"resourceName"`
}

// HostNetworkSpec declares one host network profiles may attach to.
//
// +kubebuilder:validation:XValidation:rule="(self.type == 'bridge' || self.type == 'ovs') == has(self.bridgeName)",message="bridgeName is required for type bridge and ovs, and applies to no other type",fieldPath=".bridgeName"
// +kubebuilder:validation:XValidation:rule="(self.type == 'sriov') == has(self.sriov)",message="sriov settings are required for type sriov, and apply to no other type",fieldPath=".sriov"
// +kubebuilder:validation:XValidation:rule="self.type != 'sriov' || !(has(self.managed) && self.managed) || has(self.sriov.numVFs)",message="a managed sriov network sets sriov.numVFs",fieldPath=".sriov.numVFs"
// +kubebuilder:validation:XValidation:rule="!(has(self.managed) && self.managed) || self.type == 'sriov' || (has(self.uplinks) && size(self.uplinks) > 0)",message="a managed network needs at least one uplink to build on",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="(self.type != 'macvlan' && self.type != 'sriov') || (has(self.uplinks) && size(self.uplinks) > 0)",message="macvlan and sriov networks need an uplink (the macvlan master, or the SR-IOV physical function)",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="!has(self.uplinks) || (has(self.managed) && self.managed) || self.uplinks.all(u, !has(u.bond))",message="bond describes a bond to build: only managed networks have one (name an existing bond with interface)",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="self.type != 'sriov' || !has(self.uplinks) || self.uplinks.all(u, has(u.interface))",message="the uplink of an sriov network is its physical function: name it with interface",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="!has(self.uplinks) || size(self.uplinks) <= 1 || self.uplinks.all(u, has(u.nodeSelector) && size(u.nodeSelector) > 0)",message="with several uplinks, each needs a nodeSelector naming its node group",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="!has(self.uplinks) || self.uplinks.all(u, !has(u.name) || self.uplinks.exists_one(v, has(v.name) && v.name == u.name))",message="uplink names must be unique",fieldPath=".uplinks"
// +kubebuilder:validation:XValidation:rule="self.type != 'macvlan' || !has(self.allowedVLANs) || self.allowedVLANs.all(v, !v.contains('-'))",message="a macvlan network gets one VLAN sub-interface per allowed VLAN: list ids, not ranges",fieldPath=".allowedVLANs"
// +kubebuilder:validation:XValidation:rule="!has(self.untagged) || self.untagged == 'Allowed' || (has(self.allowedVLANs) && size(self.allowedVLANs) > 0)",message="untagged: Refused needs allowedVLANs: without them a network is for untagged use only",fieldPath=".untagged"
type HostNetworkSpec struct {
	// type of the host network: bridge (a Linux bridge), ovs (an Open
	// vSwitch bridge), macvlan (macvlan on the uplink, or on its VLAN
	// sub-interface for each allowed VLAN) or sriov (VFs of a physical function).
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type cannot change: delete the HostNetwork and declare a new one"
	Type NetworkType `json:"type"`

	// bridgeName is the host bridge of a bridge or ovs network. Profiles reach
	// it by this name (their networks' bridgeName, by default br-<network>).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')",message="bridgeName must be a Linux interface name: 1 to 15 letters, digits, '-', '_' or '.'"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bridgeName cannot change: profiles attach by it"
	BridgeName string `json:"bridgeName,omitempty"`

	// uplinks are the NIC or bond the network rides on, one entry per node
	// group where NIC names differ. Required for managed networks, macvlan
	// (the master) and sriov (the physical function).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Uplinks []Uplink `json:"uplinks,omitempty"`

	// allowedVLANs are the VLANs profiles may use on this network; a managed
	// bridge trunks exactly these on its uplink, and an unmanaged bridge
	// must filter VLANs (vlan_filtering) on a node to be used there. Empty
	// allows untagged use only; set, untagged use is refused unless untagged
	// says Allowed.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	AllowedVLANs []VLANRange `json:"allowedVLANs,omitempty"`

	// untagged says whether profiles may attach without a vlanId when
	// allowedVLANs is set. Refused, the default then, keeps every VM on an
	// allowed VLAN: an untagged macvlan or SR-IOV VF sits on the uplink's
	// native VLAN, where the guest can tag its own frames onto any VLAN of
	// the switch's trunk, and on a VLAN-filtering bridge every untagged VM
	// shares PVID 1. Allowed admits untagged attachments anyway (set it to
	// keep profiles that were untagged before this field existed). Without
	// allowedVLANs only untagged use is possible; leave it unset.
	// +optional
	Untagged UntaggedPolicy `json:"untagged,omitempty"`

	// mtu is the largest MTU a VM interface may use on this network, and the
	// MTU a managed network sets on the host side. Unset means 1500.
	// +optional
	// +kubebuilder:validation:Minimum=68
	// +kubebuilder:validation:Maximum=65535
	MTU *int32 `json:"mtu,omitempty"`

	// nodeSelector picks the nodes that have (or, managed, get) this network.
	// Unset selects every node. VMs on it are placed only there.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// namespaceSelector picks the namespaces whose profiles may use this
	// network: {} allows every namespace.
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// managed: the operator builds the host side on the selected nodes with
	// one nmstate NodeNetworkConfigurationPolicy per uplink group, and
	// removes it when the HostNetwork is deleted. Unmanaged: the host side
	// already exists and the agents report where.
	// +optional
	Managed bool `json:"managed,omitempty"`

	// default makes this the host network of its type used by macvlan and
	// sriov networks that name none (networks[].hostNetwork), like a default
	// StorageClass. At most one per type should be; with several, the oldest wins.
	// +optional
	Default bool `json:"default,omitempty"`

	// sriov configures the physical function of an sriov network.
	// +optional
	SRIOV *HostSRIOV `json:"sriov,omitempty"`

	// subnets are the IP subnets on this network. When set, a profile's
	// static address here must lie in one of those of its VLAN, and be
	// neither its gateway nor in one of its reserved ranges. Unset: any address.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Subnets []Subnet `json:"subnets,omitempty"`
}

// Subnet is an IP subnet of a host network and the addresses in it that no
// profile may take statically.
//
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || (ip(self.gateway).family() == cidr(self.cidr).ip().family() && cidr(self.cidr).containsIP(self.gateway))",message="gateway must lie inside cidr",fieldPath=".gateway"
type Subnet struct {
	// cidr is the subnet, such as 192.168.100.0/24 or 2001:db8::/64.
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self) == cidr(self).masked()",message="subnets[].cidr must be a subnet in CIDR form with no host bits set, such as 192.168.100.0/24"
	CIDR string `json:"cidr"`
	// vlanId is the VLAN this subnet is on. Unset: every VLAN of the
	// network, and untagged use. An attachment is checked against the
	// subnets of its VLAN; where none applies, any address goes.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	VLANID *int32 `json:"vlanId,omitempty"`
	// gateway is the subnet's router; no profile may take its address.
	// +optional
	Gateway *IPAddress `json:"gateway,omitempty"`
	// reserved are addresses no profile may take statically (a DHCP pool,
	// routers, appliances): an address, a CIDR, or an inclusive range
	// first-last such as 192.168.100.1-192.168.100.9.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Reserved []AddressRange `json:"reserved,omitempty"`
}

// AddressRange is an IP address ("192.168.100.1"), a CIDR
// ("192.168.100.200/29") or an inclusive range of one family
// ("192.168.100.1-192.168.100.9").
// +kubebuilder:validation:MaxLength=91
// +kubebuilder:validation:XValidation:rule="isIP(self) || isCIDR(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]) && ip(self.split('-')[0]).family() == ip(self.split('-')[1]).family())",message="subnets[].reserved entries must be an IP address, a CIDR or a range first-last of one family, such as 192.168.100.1-192.168.100.9"
type AddressRange string

// NodeProblem is one node where a host network is not ready, and why.
type NodeProblem struct {
	// node name.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// message says what is wrong on that node; cut to 256 characters,
	// ending with "…" when cut.
	// +kubebuilder:validation:MaxLength=256
	Message string `json:"message"`
}

// HostNetworkStatus is what the operator observed of a host network.
type HostNetworkStatus struct {
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready (every selected node verified), Deleting (what a
	// deletion waits for).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// policies are the NodeNetworkConfigurationPolicies that build a managed network.
	// +optional
	// +listType=atomic
	Policies []string `json:"policies,omitempty"`
	// selectedNodes is how many nodes the network's nodeSelector picks.
	// +optional
	SelectedNodes int32 `json:"selectedNodes,omitempty"`
	// verifiedNodes is how many of them have the network as declared, as
	// their agents found it in the kernel.
	// +optional
	VerifiedNodes int32 `json:"verifiedNodes,omitempty"`
	// ready is verifiedNodes/selectedNodes, for kubectl get.
	// +optional
	Ready string `json:"ready,omitempty"`
	// problems lists some nodes that are not verified, and why (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Problems []NodeProblem `json:"problems,omitempty"`
	// builtOn records, for each policy of a managed network, the nodes it
	// was last written for. A node whose labels change so that a policy no
	// longer selects it keeps what was built: kubernetes-nmstate deletes
	// its enactment and reverts nothing. This record is how the operator
	// still knows what the node has, and reverts it there.
	// +optional
	// +listType=map
	// +listMapKey=policy
	BuiltOn []PolicyNodes `json:"builtOn,omitempty"`
}

// PolicyNodes are the nodes one policy was written for.
type PolicyNodes struct {
	// policy is the NodeNetworkConfigurationPolicy's name.
	Policy string `json:"policy"`
	// nodes are the names of the nodes it selected, sorted.
	// +optional
	// +listType=set
	Nodes []string `json:"nodes,omitempty"`
}

// The name rule matches format.dns1123Label()'s own expression instead of
// calling it: before Kubernetes 1.37 the CEL cost estimator takes a custom
// resource's metadata.name to be up to 3 MiB long, and format's validate
// then costs 1.007 times the per-rule budget, so 1.32 to 1.36 refuse the
// whole CRD (kubernetes/kubernetes#139573). matches with this 31-character
// expression costs a quarter as much and accepts exactly the same names.

// HostNetwork is a network on the nodes' side that a cluster admin declares
// for VMs: a Linux or OVS bridge, macvlan over an uplink, or an SR-IOV
// physical function, on which nodes, for which namespaces, with which VLANs
// and MTU. It is the only way vmoperator changes a host (managed: true), and
// profiles can attach only to what one declares.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=hostnet,categories=vmoperator
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Bridge",type=string,JSONPath=`.spec.bridgeName`
// +kubebuilder:printcolumn:name="VLANs",type=string,JSONPath=`.spec.allowedVLANs`
// +kubebuilder:printcolumn:name="Managed",type=boolean,JSONPath=`.spec.managed`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 50 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1123 label of at most 50 characters: it becomes part of node label keys and policy names"
type HostNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the network.
	Spec HostNetworkSpec `json:"spec"`
	// status is what the operator observed.
	// +optional
	Status HostNetworkStatus `json:"status,omitempty"`
}

// HostNetworkList is a list of HostNetwork.
//
// +kubebuilder:object:root=true
type HostNetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HostNetwork `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HostNetwork{}, &HostNetworkList{})
}
