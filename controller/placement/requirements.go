package placement

import (
	"fmt"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// LabelPrefix is the label domain the controller owns on Nodes.
const LabelPrefix = "cap.vm.example.com/"

// Label keys the controller projects. Each holds "true" when the node offers it.
const (
	// LabelKVM: /dev/kvm is usable.
	LabelKVM = LabelPrefix + "kvm"
	// LabelReporting: the node's agent renews its Lease. Removed when the
	// Lease expires, so new VMs avoid the node while running ones stay.
	LabelReporting = LabelPrefix + "reporting"
	// LabelSRIOV: some SR-IOV physical function has a free VF.
	LabelSRIOV = LabelPrefix + "sriov"
)

// BridgeLabel: a Linux bridge of this name is up.
func BridgeLabel(bridge string) string { return LabelPrefix + "bridge." + bridge }

// VLANLabel: VLAN id passes the bridge's uplink port.
func VLANLabel(bridge string, vlan int32) string {
	return fmt.Sprintf("%svlan.%s.%d", LabelPrefix, bridge, vlan)
}

// OVSLabel: an Open vSwitch bridge of this name exists and is up.
func OVSLabel(bridge string) string { return LabelPrefix + "ovs." + bridge }

// LinkLabel: an interface of this name (macvlan master) is up with carrier.
func LinkLabel(name string) string { return LabelPrefix + "link." + name }

// PolicyLabel: the agent verified in the kernel that this nmstate policy applied.
func PolicyLabel(policy string) string { return LabelPrefix + "policy." + policy }

// Requirement is one thing a profile needs from a node.
type Requirement struct {
	// Label is the node label that says the node offers it.
	Label string
	// Kind and the fields below say what it is, for the checks and messages.
	Kind   Kind
	Name   string // bridge, link, OVS bridge or policy name
	VLAN   int32
	Policy string // for host sides the operator builds: the policy that builds it
}

// Kind is a kind of requirement.
type Kind int

// Requirement kinds.
const (
	NeedKVM Kind = iota
	NeedBridge
	NeedVLAN
	NeedOVS
	NeedLink
	NeedSRIOV
	NeedPolicy
)

// Requirements lists what a profile needs from a node: KVM, and for each
// network its host side — an nmstate policy the agent verified when the
// operator builds the host side (uplink set), else the bridge, VLAN, OVS
// bridge or link the node must already have. Networks using an existing
// attachment (nadName) name no host requirement the operator can check.
func Requirements(profile *vmv1alpha1.VirtualMachineProfile) []Requirement {
	needs := []Requirement{{Label: LabelKVM, Kind: NeedKVM}}
	seen := map[string]bool{LabelKVM: true}
	add := func(r Requirement) {
		if !seen[r.Label] {
			seen[r.Label] = true
			needs = append(needs, r)
		}
	}
	for i := range profile.Spec.Networks {
		for _, r := range networkRequirements(profile, &profile.Spec.Networks[i]) {
			add(r)
		}
	}
	return needs
}

func networkRequirements(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) []Requirement {
	if network.NADName != "" {
		return nil
	}
	if host, ok := desired.HostNetworkFor(profile, network); ok {
		policy := desired.NNCPName(host.Interface)
		return []Requirement{{Label: PolicyLabel(policy), Kind: NeedPolicy, Name: policy}}
	}
	switch network.Type {
	case vmv1alpha1.NetworkTypeBridge:
		bridge := desired.BridgeName(network)
		needs := []Requirement{{Label: BridgeLabel(bridge), Kind: NeedBridge, Name: bridge}}
		if network.VLANID != nil {
			needs = append(needs, Requirement{Label: VLANLabel(bridge, *network.VLANID), Kind: NeedVLAN, Name: bridge, VLAN: *network.VLANID})
		}
		return needs
	case vmv1alpha1.NetworkTypeOVS:
		return []Requirement{{Label: OVSLabel(desired.BridgeName(network)), Kind: NeedOVS, Name: desired.BridgeName(network)}}
	case vmv1alpha1.NetworkTypeMacvlan:
		if master := desired.MacvlanMaster(network); master != "" {
			return []Requirement{{Label: LinkLabel(master), Kind: NeedLink, Name: master}}
		}
	case vmv1alpha1.NetworkTypeSRIOV:
		return []Requirement{{Label: LabelSRIOV, Kind: NeedSRIOV}}
	}
	return nil
}

// WantedVLANs are the (bridge, VLAN) pairs profiles need checked on nodes
// that already have the bridge: only those are projected into labels, so a
// trunk of thousands of VLANs does not become thousands of labels.
func WantedVLANs(profile *vmv1alpha1.VirtualMachineProfile) []string {
	var wanted []string
	for _, r := range Requirements(profile) {
		if r.Kind == NeedVLAN {
			wanted = append(wanted, r.Label)
		}
	}
	return wanted
}
