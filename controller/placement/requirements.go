package placement

import (
	"fmt"
	"maps"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// BridgeLabel says a Linux bridge of this name is up.
func BridgeLabel(bridge string) string { return vmv1alpha1.CapabilityLabelPrefix + "bridge." + bridge }

// VLANLabel says VLAN id passes the bridge's uplink port.
func VLANLabel(bridge string, vlan int32) string {
	return fmt.Sprintf("%svlan.%s.%d", vmv1alpha1.CapabilityLabelPrefix, bridge, vlan)
}

// OVSLabel says an Open vSwitch bridge of this name exists and is up.
func OVSLabel(bridge string) string { return vmv1alpha1.CapabilityLabelPrefix + "ovs." + bridge }

// LinkLabel says an interface of this name (macvlan master) is up with carrier.
func LinkLabel(name string) string { return vmv1alpha1.CapabilityLabelPrefix + "link." + name }

// HostNetworkLabel says the node offers this declared host network, ready to
// use (built and verified by its agent when managed; present and up when not).
func HostNetworkLabel(hostNetwork string) string {
	return vmv1alpha1.CapabilityLabelPrefix + "hostnetwork." + hostNetwork
}

// Requirement is one thing a profile needs from a node.
type Requirement struct {
	// Label is the node label that says the node offers it.
	Label string
	// Kind and the fields below say what it is, for the checks and messages.
	Kind Kind
	Name string // bridge, link, OVS bridge or host network name
	VLAN int32
	// HostNetwork is what a node must show to offer a declared host network (NeedHostNetwork).
	HostNetwork *HostNetworkOffer
	// Selector is a HostNetwork's node selector (NeedNodeLabels): where the network exists.
	Selector map[string]string
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
	NeedHostNetwork
	NeedNodeLabels
)

// HostNetworkOffer is what a node's capability must show for the node to
// offer a declared host network.
type HostNetworkOffer struct {
	Name    string
	Type    vmv1alpha1.NetworkType
	Managed bool
	// Policies are the nmstate policies that build it (managed); the one
	// selecting a node must be verified there by its agent.
	Policies []string
	// Bridge of a bridge or ovs network.
	Bridge string
	// Uplinks are its uplink interfaces (one per node group): the macvlan
	// master without VLAN, the SR-IOV physical functions.
	Uplinks []string
	// VLANFiltering: the bridge must filter VLANs on the node. An unmanaged
	// bridge with allowedVLANs needs it, or every VM on it sees every VLAN
	// of the uplink whatever its own tag (a managed one gets it from its
	// policy, which the agent verifies).
	VLANFiltering bool
}

// OfferOf is what a HostNetwork asks of a node.
func OfferOf(hostNetwork *vmv1alpha1.HostNetwork) HostNetworkOffer {
	spec := &hostNetwork.Spec
	offer := HostNetworkOffer{Name: hostNetwork.Name, Type: spec.Type, Managed: spec.Managed, Bridge: spec.BridgeName,
		VLANFiltering: spec.Type == vmv1alpha1.NetworkTypeBridge && !spec.Managed && len(spec.AllowedVLANs) > 0}
	for i := range hostNetwork.Spec.Uplinks {
		uplink := &hostNetwork.Spec.Uplinks[i]
		offer.Uplinks = append(offer.Uplinks, desired.UplinkInterface(uplink))
		if hostNetwork.Spec.Managed {
			offer.Policies = append(offer.Policies, desired.PolicyName(hostNetwork, uplink))
		}
	}
	return offer
}

// Requirements lists what a profile's VM needs from a node, from its
// resolved attachments: KVM, and for each network its host side — a
// declared host network offered on the node (and its node selector), the
// VLAN trunked on the bridge, the macvlan master; or, for a network no
// HostNetwork declares, the bridge, OVS bridge or link itself.
func Requirements(attachments []desired.Attachment) []Requirement {
	needs := []Requirement{{Label: vmv1alpha1.LabelKVM, Kind: NeedKVM}}
	seen := map[string]bool{vmv1alpha1.LabelKVM: true}
	add := func(r Requirement) {
		key := r.Label
		if r.Kind == NeedNodeLabels {
			key = fmt.Sprint(r.Selector)
		}
		if !seen[key] {
			seen[key] = true
			needs = append(needs, r)
		}
	}
	for i := range attachments {
		for _, r := range attachmentRequirements(&attachments[i]) {
			add(r)
		}
	}
	return needs
}

func attachmentRequirements(a *desired.Attachment) []Requirement {
	var needs []Requirement
	if a.Declared != nil {
		offer := OfferOf(a.Declared)
		needs = append(needs, Requirement{Label: HostNetworkLabel(offer.Name), Kind: NeedHostNetwork, Name: offer.Name, HostNetwork: &offer})
		if len(a.Declared.Spec.NodeSelector) > 0 {
			needs = append(needs, Requirement{Kind: NeedNodeLabels, Name: offer.Name, Selector: maps.Clone(a.Declared.Spec.NodeSelector)})
		}
	}
	switch a.Type {
	case vmv1alpha1.NetworkTypeBridge:
		if a.Declared == nil && a.Bridge != "" {
			needs = append(needs, Requirement{Label: BridgeLabel(a.Bridge), Kind: NeedBridge, Name: a.Bridge})
		}
		if a.VLAN != 0 && a.Bridge != "" {
			needs = append(needs, Requirement{Label: VLANLabel(a.Bridge, a.VLAN), Kind: NeedVLAN, Name: a.Bridge, VLAN: a.VLAN})
		}
	case vmv1alpha1.NetworkTypeOVS:
		if a.Declared == nil && a.Bridge != "" {
			needs = append(needs, Requirement{Label: OVSLabel(a.Bridge), Kind: NeedOVS, Name: a.Bridge})
		}
	case vmv1alpha1.NetworkTypeMacvlan:
		// A managed network's policy builds the master a generated
		// attachment uses; otherwise, and for a named attachment (its
		// config may name any sub-interface), the master must exist.
		if a.Master != "" && (a.Declared == nil || !a.Declared.Spec.Managed || a.Named) {
			needs = append(needs, Requirement{Label: LinkLabel(a.Master), Kind: NeedLink, Name: a.Master})
		}
	case vmv1alpha1.NetworkTypeSRIOV:
		if a.Declared == nil {
			needs = append(needs, Requirement{Label: vmv1alpha1.LabelSRIOV, Kind: NeedSRIOV})
		}
	}
	return needs
}

// WantedLabels are the requirements among needs whose labels NodeLabels
// projects only while some profile wants them: bridges, VLANs, OVS bridges
// and links. A node then carries labels for what is asked of it, not one
// for each of its NICs, VLAN interfaces and bridges, which on a node with
// a bridge per VLAN would be thousands. KVM and SR-IOV are one label each,
// and a host network's label is asked for by declaring it.
func WantedLabels(needs []Requirement) []Requirement {
	var wanted []Requirement
	for _, r := range needs {
		if projectedOnDemand(r.Kind) {
			wanted = append(wanted, r)
		}
	}
	return wanted
}

func projectedOnDemand(kind Kind) bool {
	switch kind {
	case NeedBridge, NeedVLAN, NeedOVS, NeedLink:
		return true
	}
	return false
}

// WantedVLANs are the (bridge, VLAN) requirements among needs: only VLANs
// some profile needs are projected into labels, so a trunk of thousands of
// VLANs does not become thousands of labels.
func WantedVLANs(needs []Requirement) []Requirement {
	var wanted []Requirement
	for _, r := range needs {
		if r.Kind == NeedVLAN {
			wanted = append(wanted, r)
		}
	}
	return wanted
}
