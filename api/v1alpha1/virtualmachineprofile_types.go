package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NetworkType says how a VM interface reaches the host network.
// +kubebuilder:validation:Enum=bridge;macvlan;sriov;ovs
type NetworkType string

// Network types.
const (
	NetworkTypeBridge  NetworkType = "bridge"
	NetworkTypeMacvlan NetworkType = "macvlan"
	NetworkTypeSRIOV   NetworkType = "sriov"
	NetworkTypeOVS     NetworkType = "ovs"
)

// IPMode says where a VM interface gets its address.
// +kubebuilder:validation:Enum=static;dhcp
type IPMode string

// IP modes.
const (
	IPModeStatic IPMode = "static"
	IPModeDHCP   IPMode = "dhcp"
)

// RestartPolicy is the seed's high-availability restart policy. It maps onto a
// KubeVirt run strategy when startStrategy.runStrategy is not set.
// +kubebuilder:validation:Enum=Always;OnFailure;Never
type RestartPolicy string

// Restart policies.
const (
	RestartAlways    RestartPolicy = "Always"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartNever     RestartPolicy = "Never"
)

// RunStrategy is a KubeVirt run strategy, passed through to the VirtualMachine.
// +kubebuilder:validation:Enum=Always;RerunOnFailure;Manual;Halted;Once
type RunStrategy string

// Run strategies, with KubeVirt's meanings.
const (
	RunStrategyAlways         RunStrategy = "Always"
	RunStrategyRerunOnFailure RunStrategy = "RerunOnFailure"
	RunStrategyManual         RunStrategy = "Manual"
	RunStrategyHalted         RunStrategy = "Halted"
	RunStrategyOnce           RunStrategy = "Once"
)

// RetainPolicy says what happens to a disk's volume when its profile is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type RetainPolicy string

// Retain policies.
const (
	RetainPolicyRetain RetainPolicy = "Retain"
	RetainPolicyDelete RetainPolicy = "Delete"
)

// Phase is the one-word summary of a profile's state.
// +kubebuilder:validation:Enum=Pending;Creating;Running;Stopped;Error
type Phase string

// Phases.
const (
	PhasePending  Phase = "Pending"
	PhaseCreating Phase = "Creating"
	PhaseRunning  Phase = "Running"
	PhaseStopped  Phase = "Stopped"
	PhaseError    Phase = "Error"
)

// IPSource says where a reported interface address comes from.
// +kubebuilder:validation:Enum=Guest;Spec
type IPSource string

// IP sources.
const (
	// IPSourceGuest is an address the running VM reported (through the VMI).
	IPSourceGuest IPSource = "Guest"
	// IPSourceSpec is the configured static address, shown until the guest reports one.
	IPSourceSpec IPSource = "Spec"
)

// VirtualMachineProfileSpec is everything needed to run one VM: size, image,
// networks, disks, high availability and start behaviour.
//
// +kubebuilder:validation:XValidation:rule="!has(self.disks) || self.disks.filter(d, has(d.boot) && d.boot).size() <= 1",message="at most one disk may have boot: true",fieldPath=".disks"
type VirtualMachineProfileSpec struct {
	// cpu is the number of virtual CPU cores of the VM. At least 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	CPU int32 `json:"cpu"`

	// memory is the guest memory as a Kubernetes quantity, for example 4Gi or 512Mi;
	// at least 1M, KubeVirt's smallest memory request.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="memory must be a positive quantity such as 4Gi or 512Mi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || !quantity(self).isGreaterThan(quantity('0')) || quantity(self).compareTo(quantity('1M')) >= 0",message="memory must be at least 1M: KubeVirt refuses smaller memory requests (virt-api's admitter), and no guest boots in less"
	Memory string `json:"memory"`

	// osImage is a container registry image holding the OS disk, for example
	// registry.local/centos-stream:8 (a docker:// prefix is optional). Without
	// disks the VM boots from it as a container disk; with a boot disk that has
	// no image of its own, it is imported into that disk.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^(docker://)?[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$') && (!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://') || self.startsWith('docker://'))",message="osImage must be a container registry image reference such as registry.local/centos-stream:8 (optionally prefixed docker://)"
	OSImage string `json:"osImage,omitempty"`

	// sshKeySecret names a Secret in the profile's namespace whose data holds
	// the SSH public key(s) injected into the guest. The key never appears in
	// status, events or logs.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="sshKeySecret must be a Secret name: lowercase letters, digits, '-' and '.', at most 253 characters"
	SSHKeySecret string `json:"sshKeySecret,omitempty"`

	// networks are the VM's network interfaces, in order (the first is eth0 in the guest).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(n, self.exists_one(m, m.name == n.name))",message="network names must be unique"
	// +kubebuilder:validation:XValidation:rule="self.all(n, !has(n.macAddress) || self.exists_one(m, has(m.macAddress) && m.macAddress.lowerAscii() == n.macAddress.lowerAscii()))",message="macAddress must differ between networks: the guest tells its interfaces apart by MAC"
	Networks []NetworkConfig `json:"networks,omitempty"`

	// disks are the VM's persistent disks. At most one has boot: true.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(d, self.exists_one(e, e.name == d.name))",message="disk names must be unique"
	Disks []DiskConfig `json:"disks,omitempty"`

	// highAvailability controls restart behaviour and how VMs spread over nodes.
	// +optional
	HighAvailability *HighAvailabilitySpec `json:"highAvailability,omitempty"`

	// startStrategy controls whether and how the VM runs.
	// +optional
	StartStrategy *StartStrategySpec `json:"startStrategy,omitempty"`
}

// NetworkConfig is one VM network interface and the host network it attaches to.
//
// +kubebuilder:validation:XValidation:rule="!has(self.bridgeName) || self.type == 'bridge' || self.type == 'ovs'",message="bridgeName applies only to networks of type bridge or ovs",fieldPath=".bridgeName"
// +kubebuilder:validation:XValidation:rule="!(has(self.hostNetwork) && has(self.nadName))",message="hostNetwork cannot be combined with nadName: an existing NetworkAttachmentDefinition already says where it attaches",fieldPath=".hostNetwork"
// +kubebuilder:validation:XValidation:rule="!has(self.sriov) || self.type == 'sriov'",message="sriov settings apply only to networks of type sriov",fieldPath=".sriov"
type NetworkConfig struct {
	// name identifies the network inside the profile; a DNS-1123 label, unique among networks.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Label().validate(self).hasValue()",message="network name must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
	Name string `json:"name"`

	// type is how the interface reaches the host: bridge (Linux bridge), macvlan,
	// sriov (an SR-IOV virtual function) or ovs (an Open vSwitch bridge).
	Type NetworkType `json:"type"`

	// nadName uses an existing NetworkAttachmentDefinition ("name" in the
	// profile's namespace, or "namespace/name") instead of creating one. It is
	// never modified by the operator.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="nadName must be a NetworkAttachmentDefinition name (lowercase letters, digits, '-' and '.'), optionally prefixed with its namespace and '/'"
	NADName string `json:"nadName,omitempty"`

	// vlanId is the 802.1Q VLAN tag of this network, 1 to 4094.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	VLANID *int32 `json:"vlanId,omitempty"`

	// bridgeName is the host bridge the interface attaches to (Linux bridge for
	// type bridge, OVS bridge for type ovs): a Linux interface name of at most
	// 15 characters, ending as it starts with a letter or digit, as the node
	// label that places the VM where the bridge is (cap.vm.example.com/bridge.<name>)
	// must. Unset means br-<network name>. A HostNetwork must declare it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$')",message="bridgeName must be a Linux interface name: 1 to 15 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (it is part of a node label key)"
	BridgeName string `json:"bridgeName,omitempty"`

	// hostNetwork names the HostNetwork (declared by a cluster admin) this
	// network attaches to. Unset: a bridge or ovs network attaches to the
	// HostNetwork declaring its bridgeName; a macvlan or sriov network to the
	// default HostNetwork of its type.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Label().validate(self).hasValue()",message="hostNetwork must be a HostNetwork name: a DNS-1123 label"
	HostNetwork string `json:"hostNetwork,omitempty"`

	// mtu of the interface, 68 to 65535, at most the HostNetwork's.
	// Unset keeps the host default.
	// +optional
	// +kubebuilder:validation:Minimum=68
	// +kubebuilder:validation:Maximum=65535
	MTU *int32 `json:"mtu,omitempty"`

	// macAddress of the guest interface, a unicast MAC such as 02:00:00:00:00:01.
	// Unset means a stable MAC derived from namespace, profile and network name
	// (locally administered), so the guest keeps its MAC across re-creation.
	// +optional
	// +kubebuilder:validation:MaxLength=17
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$')",message="macAddress must be a unicast MAC address written as six colon-separated hex pairs, such as 02:00:00:00:00:01"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^00(:00){5}$')",message="macAddress must not be 00:00:00:00:00:00: the all-zero address is no NIC's (IEEE 802; Linux refuses it as a device address)"
	MACAddress string `json:"macAddress,omitempty"`

	// sriov holds SR-IOV settings; only for type sriov.
	// +optional
	SRIOV *SRIOVConfig `json:"sriov,omitempty"`

	// ipConfig is how the guest configures this interface (through cloud-init).
	// +optional
	IPConfig *IPConfigSpec `json:"ipConfig,omitempty"`
}

// SRIOVConfig selects the SR-IOV virtual functions a network uses.
type SRIOVConfig struct {
	// resourceName is the device-plugin resource that provides the VFs, for
	// example intel.com/sriov_netdevice. Without hostNetwork, it picks the
	// sriov HostNetwork with this resource.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:XValidation:rule="!format.qualifiedName().validate(self).hasValue() && self.contains('/')",message="sriov.resourceName must be a device-plugin resource name such as intel.com/sriov_netdevice"
	ResourceName string `json:"resourceName,omitempty"`
}

// IPAddress is a single IPv4 or IPv6 address.
// +kubebuilder:validation:MaxLength=45
// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address such as 192.168.100.1 or 2001:db8::1"
type IPAddress string

// IPConfigSpec is how the guest configures one interface.
//
// +kubebuilder:validation:XValidation:rule="self.mode != 'static' || has(self.address)",message="address is required when mode is static",fieldPath=".address"
// +kubebuilder:validation:XValidation:rule="self.mode != 'dhcp' || !has(self.address)",message="address must not be set when mode is dhcp",fieldPath=".address"
// +kubebuilder:validation:XValidation:rule="self.mode != 'dhcp' || !has(self.gateway)",message="gateway must not be set when mode is dhcp",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || ip(self.gateway).family() == cidr(self.address).ip().family()",message="gateway must be of the same IP family as address",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || ip(self.gateway).family() != cidr(self.address).ip().family() || cidr(self.address).containsIP(self.gateway)",message="gateway must lie inside the subnet of address",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || !cidr(self.gateway + (ip(self.gateway).family() == 4 ? '/32' : '/128')).containsIP(self.address.split('/')[0])",message="gateway must differ from the interface's own address",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || (ip(self.gateway).isGlobalUnicast() && !cidr('0.0.0.0/8').containsIP(self.gateway))",message="gateway must be a unicast host address, not loopback, link-local, multicast, broadcast, unspecified or in 0.0.0.0/8 (this network)",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || ip(self.gateway).family() != cidr(self.address).ip().family() || cidr(self.address).prefixLength() > (cidr(self.address).ip().family() == 4 ? 30 : 126) || !cidr(self.gateway + (ip(self.gateway).family() == 4 ? '/32' : '/128')).containsIP(cidr(self.address).masked().ip())",message="gateway must not be the subnet's own address (host bits all zero): the IPv4 network address, or the IPv6 subnet-router anycast address",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || ip(self.gateway).family() != 4 || cidr(self.address).ip().family() != 4 || cidr(self.address).prefixLength() > 30 || (int(self.gateway.split('.')[0]) * 16777216 + int(self.gateway.split('.')[1]) * 65536 + int(self.gateway.split('.')[2]) * 256 + int(self.gateway.split('.')[3]) + 1) % [4294967296, 2147483648, 1073741824, 536870912, 268435456, 134217728, 67108864, 33554432, 16777216, 8388608, 4194304, 2097152, 1048576, 524288, 262144, 131072, 65536, 32768, 16384, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1][cidr(self.address).prefixLength()] != 0",message="gateway must not be the subnet's broadcast address (host bits all one)",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.address) || !isCIDR(self.address) || !isIP(self.gateway) || cidr(self.address).prefixLength() != 64 || !self.gateway.matches('(?i):fdff:ffff:ffff:ff[89a-f][0-9a-f]$')",message="gateway must not be a reserved subnet anycast address (RFC 2526: interface identifiers fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff in a /64)",fieldPath=".gateway"
type IPConfigSpec struct {
	// mode is static (address set here) or dhcp (address from the network's DHCP server).
	Mode IPMode `json:"mode"`

	// address with prefix length in CIDR form, such as 192.168.100.10/24 or
	// 2001:db8::10/64. Required for static, forbidden for dhcp. A host
	// address: not the subnet's network or broadcast address (IPv4 /0 to
	// /30), nor its subnet-router or reserved anycast address (IPv6).
	// +optional
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="address must be an IP address with prefix length in CIDR form, such as 192.168.100.10/24 or 2001:db8::10/64"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || (cidr(self).ip().isGlobalUnicast() && !cidr('0.0.0.0/8').containsIP(cidr(self).ip()))",message="address must be a unicast host address, not loopback, link-local, multicast, broadcast, unspecified or in 0.0.0.0/8 (this network)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).prefixLength() > (cidr(self).ip().family() == 4 ? 30 : 126) || !cidr(self.split('/')[0] + (cidr(self).ip().family() == 4 ? '/32' : '/128')).containsIP(cidr(self).masked().ip())",message="address must not be its subnet's own address (host bits all zero): the IPv4 network address, or the IPv6 subnet-router anycast address; only /31 and /32 (IPv6 /127 and /128) subnets use it for a host"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).ip().family() != 4 || cidr(self).prefixLength() > 30 || (int(self.replace('/', '.').split('.')[0]) * 16777216 + int(self.replace('/', '.').split('.')[1]) * 65536 + int(self.replace('/', '.').split('.')[2]) * 256 + int(self.replace('/', '.').split('.')[3]) + 1) % [4294967296, 2147483648, 1073741824, 536870912, 268435456, 134217728, 67108864, 33554432, 16777216, 8388608, 4194304, 2097152, 1048576, 524288, 262144, 131072, 65536, 32768, 16384, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1][cidr(self).prefixLength()] != 0",message="address must not be its subnet's broadcast address (host bits all one); only /31 and /32 subnets use it for a host"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !self.matches('(?i):fdff:ffff:ffff:ff[89a-f][0-9a-f]/64$')",message="address must not be a reserved subnet anycast address (RFC 2526: interface identifiers fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff in a /64)"
	Address *string `json:"address,omitempty"`

	// gateway is the default gateway, an IP inside address's subnet and of the
	// same family. Static mode only.
	// +optional
	Gateway *IPAddress `json:"gateway,omitempty"`

	// dnsServers are up to 3 nameserver IP addresses.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:XValidation:rule="self.all(s, !isIP(s) || !(ip(s).isUnspecified() || s == '255.255.255.255' || cidr('224.0.0.0/4').containsIP(s) || cidr('ff00::/8').containsIP(s)))",message="dnsServers must be unicast addresses: not unspecified (0.0.0.0, ::), broadcast or multicast"
	DNSServers []IPAddress `json:"dnsServers,omitempty"`
}

// DiskConfig is one persistent disk of the VM.
//
// +kubebuilder:validation:XValidation:rule="!isQuantity(self.size) || !isQuantity(oldSelf.size) || quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",message="size may grow but never shrink",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.storageClassName) || (has(self.storageClassName) && self.storageClassName == oldSelf.storageClassName)",message="storageClassName cannot change once set: the disk's data lives in that class",fieldPath=".storageClassName"
type DiskConfig struct {
	// name identifies the disk inside the profile; a DNS-1123 label, unique among
	// disks, not starting with vmop- (the VM's own volumes, vmop-cloudinit and
	// vmop-containerdisk, sit beside the disks). The volume is named <profile>-<name>.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Label().validate(self).hasValue()",message="disk name must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('vmop-')",message="disk names starting with vmop- are reserved for the volumes the operator adds to the VM (vmop-cloudinit, vmop-containerdisk)"
	Name string `json:"name"`

	// size of the disk as a Kubernetes quantity, for example 80Gi. It may grow
	// (the volume is expanded when its storage class allows it) but never shrink.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="size must be a positive quantity such as 80Gi"
	Size string `json:"size"`

	// storageClassName of the disk's volume; unset uses the cluster's default
	// class. Cannot change once set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="storageClassName must be a StorageClass name: lowercase letters, digits, '-' and '.', at most 253 characters"
	StorageClassName string `json:"storageClassName,omitempty"`

	// boot marks the disk the VM boots from. At most one disk has it.
	// +optional
	Boot bool `json:"boot,omitempty"`

	// image is a container registry image whose disk image is imported into
	// this disk (through a CDI DataVolume), for example
	// registry.local/centos-stream:8. Unset creates a blank disk.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^(docker://)?[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$') && (!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://') || self.startsWith('docker://'))",message="image must be a container registry image reference such as registry.local/centos-stream:8 (optionally prefixed docker://)"
	Image string `json:"image,omitempty"`

	// retainPolicy says what happens to the volume when the profile is
	// deleted: Retain (default) keeps it, and a profile re-created with the same
	// name adopts it again; Delete removes it with the profile.
	// +optional
	// +kubebuilder:default=Retain
	RetainPolicy RetainPolicy `json:"retainPolicy,omitempty"`
}

// HighAvailabilitySpec controls restart behaviour and spreading.
type HighAvailabilitySpec struct {
	// restartPolicy is used when startStrategy.runStrategy is unset:
	// Always runs the VM always, OnFailure re-runs it after a failure
	// (RerunOnFailure), Never runs it once.
	// +optional
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty"`

	// antiAffinity spreads this profile's VM away from the VMs of other
	// profiles that also set it: no two of them share a node.
	// +optional
	AntiAffinity bool `json:"antiAffinity,omitempty"`

	// nodeSelector restricts the VM to nodes with all of these labels.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",message="every nodeSelector key must be a valid label key: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`
}

// LabelValue is the value of a Kubernetes label.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="!format.labelValue().validate(self).hasValue()",message="must be a valid label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
type LabelValue string

// StartStrategySpec controls whether and how the VM runs. Precedence: an
// explicit runStrategy wins; otherwise autoStart: false means Halted;
// otherwise highAvailability.restartPolicy decides (Always → Always,
// OnFailure → RerunOnFailure, Never → Once); otherwise Always.
type StartStrategySpec struct {
	// runStrategy is passed to the KubeVirt VirtualMachine: Always,
	// RerunOnFailure, Manual, Halted or Once.
	// +optional
	RunStrategy RunStrategy `json:"runStrategy,omitempty"`

	// autoStart starts the VM once it is created; defaults to true.
	// +optional
	// +kubebuilder:default=true
	AutoStart *bool `json:"autoStart,omitempty"`
}

// NetworkStatus is what the VM shows for one network.
type NetworkStatus struct {
	// name of the network in spec.networks.
	Name string `json:"name"`
	// interface name inside the guest, for example eth0.
	// +optional
	Interface string `json:"interface,omitempty"`
	// ipAddress of the interface in CIDR form when the prefix is known.
	// +optional
	IPAddress string `json:"ipAddress,omitempty"`
	// ipSource says whether ipAddress was reported by the guest or is the configured static address.
	// +optional
	IPSource IPSource `json:"ipSource,omitempty"`
	// macAddress of the interface.
	// +optional
	MACAddress string `json:"macAddress,omitempty"`
	// hostNetwork is the HostNetwork the interface attaches to, when one declares its segment.
	// +optional
	HostNetwork string `json:"hostNetwork,omitempty"`
}

// VolumeStatus is the state of one disk's volume.
type VolumeStatus struct {
	// name of the disk in spec.disks.
	Name string `json:"name"`
	// pvcName is the PersistentVolumeClaim that holds the disk.
	// +optional
	PVCName string `json:"pvcName,omitempty"`
	// bound is true once the claim is bound to a volume.
	Bound bool `json:"bound"`
	// phase of the import (DataVolume phase) or of the claim.
	// +optional
	Phase string `json:"phase,omitempty"`
	// progress of an image import, for example 45.2%.
	// +optional
	Progress string `json:"progress,omitempty"`
	// capacity of the bound volume.
	// +optional
	Capacity string `json:"capacity,omitempty"`
	// message explains a volume that is not ready.
	// +optional
	Message string `json:"message,omitempty"`
}

// NodeExclusion is why one node cannot host the VM.
type NodeExclusion struct {
	// node name.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// reason is the first check the node failed, for example "bridge br-mgmt is down";
	// cut to 256 characters, ending with "…" when cut.
	// +kubebuilder:validation:MaxLength=256
	Reason string `json:"reason"`
}

// PlacementStatus summarises which nodes can host the VM and why the others cannot.
type PlacementStatus struct {
	// eligibleNodes is the number of nodes that satisfy every requirement of the profile.
	EligibleNodes int32 `json:"eligibleNodes"`
	// excludedNodes is the number of nodes that do not.
	ExcludedNodes int32 `json:"excludedNodes"`
	// excluded lists some of the excluded nodes with the first reason each failed (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Excluded []NodeExclusion `json:"excluded,omitempty"`
}

// VirtualMachineProfileStatus is what the operator observed.
type VirtualMachineProfileStatus struct {
	// phase is a one-word summary: Pending, Creating, Running, Stopped or Error.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// vmName is the KubeVirt VirtualMachine created for this profile,
	// <profile>-vm: the name virtctl console, vnc and ssh take (kubectl
	// vmprofile console <profile> passes it on).
	// +optional
	VMName string `json:"vmName,omitempty"`
	// nodeName is the node the VM runs on.
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// observedGeneration is the profile generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready, NetworksConfigured, VolumesBound, Scheduled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// addresses lists every network's ipAddress, comma separated, in the
	// order of spec.networks: the Addresses column of kubectl get -o wide.
	// +optional
	Addresses string `json:"addresses,omitempty"`
	// networks reports each interface's address and MAC.
	// +optional
	// +listType=map
	// +listMapKey=name
	Networks []NetworkStatus `json:"networks,omitempty"`
	// volumes reports each disk's volume.
	// +optional
	// +listType=map
	// +listMapKey=name
	Volumes []VolumeStatus `json:"volumes,omitempty"`
	// placement says how many nodes can host the VM and why others cannot.
	// +optional
	Placement *PlacementStatus `json:"placement,omitempty"`
}

// The name rule matches format.dns1123Label()'s own expression instead of
// calling it: before Kubernetes 1.37 the CEL cost estimator takes a custom
// resource's metadata.name to be up to 3 MiB long, and format's validate
// then costs 1.007 times the per-rule budget, so 1.32 to 1.36 refuse the
// whole CRD (kubernetes/kubernetes#139573). matches with this 31-character
// expression costs a quarter as much and accepts exactly the same names.

// VirtualMachineProfile is one VM with its networks, disks and placement,
// turned by vmop-controller into a running KubeVirt VirtualMachine.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vmprofile,categories=all;vmoperator
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="VM",type=string,JSONPath=`.status.vmName`,description="the KubeVirt VirtualMachine, the name virtctl takes"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.nodeName`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.status.networks[0].ipAddress`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.status.addresses`,priority=1,description="every network's address"
// +kubebuilder:printcolumn:name="Eligible",type=integer,JSONPath=`.status.placement.eligibleNodes`,priority=1,description="nodes that can host the VM"
// +kubebuilder:printcolumn:name="Excluded",type=integer,JSONPath=`.status.placement.excludedNodes`,priority=1,description="nodes that cannot; status.placement.excluded says why"
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 60 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1123 label of at most 60 characters: the VM is named <name>-vm and KubeVirt puts that name in labels (63 characters at most)"
type VirtualMachineProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired VM.
	Spec VirtualMachineProfileSpec `json:"spec"`
	// status is what the operator observed.
	// +optional
	Status VirtualMachineProfileStatus `json:"status,omitempty"`
}

// VirtualMachineProfileList is a list of VirtualMachineProfile.
//
// +kubebuilder:object:root=true
type VirtualMachineProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualMachineProfile `json:"items"`
}

func init() {
	SchemeBuilder.Register(&VirtualMachineProfile{}, &VirtualMachineProfileList{})
}
