// Package attach resolves each network of a profile against the host
// networks a cluster admin declared (HostNetwork objects): which host
// network it joins, with which bridge, master, VLAN, MTU or SR-IOV
// resource, and whether the profile's namespace, VLAN and MTU are allowed
// there. A network nothing declares is refused, unless the operator runs
// single-tenant and allows undeclared host networks. It is pure: the
// reconciler passes in what it read.
package attach

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// Policy is how the operator is configured to treat undeclared networks.
type Policy struct {
	// AllowUndeclared lets networks attach to host bridges and links no
	// HostNetwork declares (single-tenant clusters).
	AllowUndeclared bool
	// SharedNADNamespaces are the namespaces a nadName may point into
	// besides the profile's own.
	SharedNADNamespaces []string
	// DefaultSRIOVResource is the resource of undeclared SR-IOV networks
	// that name none.
	DefaultSRIOVResource string
}

// Inputs is everything resolution reads.
type Inputs struct {
	HostNetworks []vmv1alpha1.HostNetwork
	// NamespaceLabels are the labels of the profile's namespace.
	NamespaceLabels map[string]string
	// NADs are the named attachments that exist (nadName networks).
	NADs map[types.NamespacedName]*nadv1.NetworkAttachmentDefinition
	Policy
}

// Refusal is why a network may not attach: a condition reason and message.
type Refusal struct {
	Network string
	Reason  string
	Message string
}

// Resolve resolves every network of the profile, or says why one is refused.
func Resolve(profile *vmv1alpha1.VirtualMachineProfile, in Inputs) ([]desired.Attachment, *Refusal) {
	attachments := make([]desired.Attachment, 0, len(profile.Spec.Networks))
	for i := range profile.Spec.Networks {
		a, refusal := resolveNetwork(profile, &profile.Spec.Networks[i], in)
		if refusal != nil {
			return nil, refusal
		}
		attachments = append(attachments, a)
	}
	return attachments, nil
}

func resolveNetwork(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig, in Inputs) (desired.Attachment, *Refusal) {
	a := desired.Attachment{Network: network, Type: network.Type, NAD: desired.NADKey(profile, network), Named: network.NADName != ""}
	if network.VLANID != nil {
		a.VLAN = *network.VLANID
	}
	if network.MTU != nil {
		a.MTU = *network.MTU
	}
	if a.Named {
		return named(profile, a, in)
	}
	hostNetwork, refusal := findHostNetwork(network, in.HostNetworks)
	if refusal != nil {
		return a, refusal
	}
	if hostNetwork == nil {
		return undeclared(a, in.Policy)
	}
	if refusal := allowed(profile, network, hostNetwork, in.NamespaceLabels); refusal != nil {
		return a, refusal
	}
	return declared(a, hostNetwork)
}

// findHostNetwork finds the HostNetwork a network asks for: by name, by
// bridge (bridge and ovs), by SR-IOV resource, or the default of its type.
// Several candidates: the oldest wins, as the HostNetwork controller makes
// the younger report the conflict. None (and no name given): nil.
func findHostNetwork(network *vmv1alpha1.NetworkConfig, all []vmv1alpha1.HostNetwork) (*vmv1alpha1.HostNetwork, *Refusal) {
	if network.HostNetwork != "" {
		i := slices.IndexFunc(all, func(h vmv1alpha1.HostNetwork) bool { return h.Name == network.HostNetwork })
		if i < 0 {
			return nil, refuse(network, vmv1alpha1.ReasonHostNetworkNotFound, "HostNetwork %s does not exist", network.HostNetwork)
		}
		return checkMatch(network, &all[i])
	}
	var match func(h *vmv1alpha1.HostNetwork) bool
	switch network.Type {
	case vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeOVS:
		bridge := desired.BridgeName(network)
		match = func(h *vmv1alpha1.HostNetwork) bool { return h.Spec.BridgeName == bridge }
	case vmv1alpha1.NetworkTypeSRIOV:
		if network.SRIOV != nil && network.SRIOV.ResourceName != "" {
			match = func(h *vmv1alpha1.HostNetwork) bool {
				return h.Spec.SRIOV != nil && h.Spec.SRIOV.ResourceName == network.SRIOV.ResourceName
			}
		} else {
			match = func(h *vmv1alpha1.HostNetwork) bool { return h.Spec.Default }
		}
	default:
		match = func(h *vmv1alpha1.HostNetwork) bool { return h.Spec.Default }
	}
	var found *vmv1alpha1.HostNetwork
	for i := range all {
		h := &all[i]
		if h.Spec.Type == network.Type && match(h) && (found == nil || Older(h, found)) {
			found = h
		}
	}
	return found, nil
}

// Older orders HostNetworks by creation, then name: the older of two that
// declare the same thing wins.
func Older(a, b *vmv1alpha1.HostNetwork) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

func checkMatch(network *vmv1alpha1.NetworkConfig, h *vmv1alpha1.HostNetwork) (*vmv1alpha1.HostNetwork, *Refusal) {
	switch {
	case h.Spec.Type != network.Type:
		return nil, refuse(network, vmv1alpha1.ReasonHostNetworkMismatch, "HostNetwork %s is of type %s, not %s", h.Name, h.Spec.Type, network.Type)
	case network.BridgeName != "" && network.BridgeName != h.Spec.BridgeName:
		return nil, refuse(network, vmv1alpha1.ReasonHostNetworkMismatch, "HostNetwork %s declares bridge %s, not %s", h.Name, h.Spec.BridgeName, network.BridgeName)
	case network.SRIOV != nil && network.SRIOV.ResourceName != "" && h.Spec.SRIOV != nil && h.Spec.SRIOV.ResourceName != network.SRIOV.ResourceName:
		return nil, refuse(network, vmv1alpha1.ReasonHostNetworkMismatch, "HostNetwork %s hands out %s, not %s", h.Name, h.Spec.SRIOV.ResourceName, network.SRIOV.ResourceName)
	}
	return h, nil
}

// allowed applies the HostNetwork's rules: namespace, VLAN, MTU.
func allowed(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig, h *vmv1alpha1.HostNetwork, namespaceLabels map[string]string) *Refusal {
	selector, err := metav1.LabelSelectorAsSelector(&h.Spec.NamespaceSelector)
	if err != nil || !selector.Matches(labels.Set(namespaceLabels)) {
		return refuse(network, vmv1alpha1.ReasonNamespaceNotAllowed, "HostNetwork %s does not allow namespace %s (its namespaceSelector)", h.Name, profile.Namespace)
	}
	if network.VLANID != nil && !h.Spec.AllowsVLAN(*network.VLANID) {
		return refuse(network, vmv1alpha1.ReasonVLANNotAllowed, "VLAN %d is not allowed on HostNetwork %s (allowed: %s)", *network.VLANID, h.Name, allowedList(h))
	}
	if network.MTU != nil && *network.MTU > h.Spec.EffectiveMTU() {
		return refuse(network, vmv1alpha1.ReasonMTUTooLarge, "mtu %d is above HostNetwork %s's %d", *network.MTU, h.Name, h.Spec.EffectiveMTU())
	}
	if network.Type == vmv1alpha1.NetworkTypeMacvlan && network.VLANID == nil && len(h.Spec.Uplinks) > 1 {
		return refuse(network, vmv1alpha1.ReasonHostNetworkMismatch,
			"HostNetwork %s has a different uplink per node group, so an untagged macvlan has no single master: set a vlanId", h.Name)
	}
	return nil
}

func allowedList(h *vmv1alpha1.HostNetwork) string {
	if len(h.Spec.AllowedVLANs) == 0 {
		return "untagged only"
	}
	parts := make([]string, 0, len(h.Spec.AllowedVLANs))
	for _, r := range h.Spec.AllowedVLANs {
		parts = append(parts, string(r))
	}
	return strings.Join(parts, ",")
}

// declared fills in what the HostNetwork decides.
func declared(a desired.Attachment, h *vmv1alpha1.HostNetwork) (desired.Attachment, *Refusal) {
	a.Declared = h
	switch h.Spec.Type {
	case vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeOVS:
		a.Bridge = h.Spec.BridgeName
	case vmv1alpha1.NetworkTypeMacvlan:
		a.Master = macvlanMaster(h, a.VLAN)
	case vmv1alpha1.NetworkTypeSRIOV:
		a.ResourceName = h.Spec.SRIOV.ResourceName
	}
	a.Segment = segment("hostnetwork", h.Name, a.VLAN)
	return a, nil
}

// macvlanMaster is the macvlan master on a declared network: the VLAN
// sub-interface the operator builds (managed) or the uplink's usual
// sub-interface name (unmanaged, where the admin built it), else the uplink.
func macvlanMaster(h *vmv1alpha1.HostNetwork, vlan int32) string {
	uplink := desired.UplinkInterface(&h.Spec.Uplinks[0])
	switch {
	case vlan == 0:
		return uplink
	case h.Spec.Managed:
		return desired.VLANInterfaceName(h.Name, vlan)
	}
	return fmt.Sprintf("%s.%d", uplink, vlan)
}

// undeclared resolves a network no HostNetwork declares: refused, unless
// the operator allows undeclared networks.
func undeclared(a desired.Attachment, policy Policy) (desired.Attachment, *Refusal) {
	network := a.Network
	if !policy.AllowUndeclared {
		return a, refuse(network, vmv1alpha1.ReasonHostNetworkNotDeclared, "%s; a cluster admin declares it with a HostNetwork (kubectl get hostnetworks)", missing(network))
	}
	switch network.Type {
	case vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeOVS:
		a.Bridge = desired.BridgeName(network)
		a.Segment = segment(string(network.Type), a.Bridge, a.VLAN)
	case vmv1alpha1.NetworkTypeMacvlan:
		if a.VLAN != 0 {
			return a, refuse(network, vmv1alpha1.ReasonVLANNotAllowed,
				"a macvlan network with vlanId needs a macvlan HostNetwork that says which uplink carries the VLAN")
		}
		a.Segment = segment("macvlan", "default-route", 0)
	case vmv1alpha1.NetworkTypeSRIOV:
		a.ResourceName = policy.DefaultSRIOVResource
		if network.SRIOV != nil && network.SRIOV.ResourceName != "" {
			a.ResourceName = network.SRIOV.ResourceName
		}
		a.Segment = segment("sriov", a.ResourceName, a.VLAN)
	}
	return a, nil
}

func missing(network *vmv1alpha1.NetworkConfig) string {
	switch network.Type {
	case vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeOVS:
		return fmt.Sprintf("no HostNetwork of type %s declares bridge %s", network.Type, desired.BridgeName(network))
	case vmv1alpha1.NetworkTypeSRIOV:
		if network.SRIOV != nil && network.SRIOV.ResourceName != "" {
			return "no sriov HostNetwork hands out " + network.SRIOV.ResourceName
		}
	}
	return fmt.Sprintf("no HostNetwork of type %s is the default", network.Type)
}

// named resolves a nadName network: the attachment exists already (or not
// yet), was made by someone allowed to make it, and is used as it is. Its
// config says which segment it joins, so static addresses are checked
// across every way of reaching a segment.
func named(profile *vmv1alpha1.VirtualMachineProfile, a desired.Attachment, in Inputs) (desired.Attachment, *Refusal) {
	if a.NAD.Namespace != profile.Namespace && !slices.Contains(in.SharedNADNamespaces, a.NAD.Namespace) {
		return a, refuse(a.Network, vmv1alpha1.ReasonNADNamespaceNotShared,
			"nadName %s is in namespace %s, which the operator does not share attachments from", a.NAD, a.NAD.Namespace)
	}
	a.Segment = "nad/" + a.NAD.String()
	nad := in.NADs[a.NAD]
	if nad == nil {
		return a, nil // the reconciler reports the missing attachment
	}
	config := parseCNI(nad.Spec.Config)
	a.VLAN, a.MTU = config.VLAN, config.MTU
	switch config.Type {
	case "bridge", "ovs":
		a.Type, a.Bridge = vmv1alpha1.NetworkType(config.Type), config.Bridge
		a.Segment = segment(string(a.Type), a.Bridge, a.VLAN)
		if h := declaringBridge(in.HostNetworks, a.Type, a.Bridge); h != nil {
			a.Declared = h
			a.Segment = segment("hostnetwork", h.Name, a.VLAN)
		}
	case "macvlan":
		a.Type, a.Master, a.VLAN = vmv1alpha1.NetworkTypeMacvlan, config.Master, 0
		a.Segment = segment("macvlan", config.Master, 0)
	case "sriov":
		a.Type, a.ResourceName = vmv1alpha1.NetworkTypeSRIOV, nad.Annotations[desired.AnnotationResourceName]
		a.Segment = segment("sriov", a.ResourceName, a.VLAN)
	}
	return a, nil
}

func declaringBridge(all []vmv1alpha1.HostNetwork, kind vmv1alpha1.NetworkType, bridge string) *vmv1alpha1.HostNetwork {
	var found *vmv1alpha1.HostNetwork
	for i := range all {
		if all[i].Spec.Type == kind && all[i].Spec.BridgeName == bridge && (found == nil || Older(&all[i], found)) {
			found = &all[i]
		}
	}
	return found
}

// cniConfig is the part of a CNI config that says where it attaches; a
// conflist's first plugin decides.
type cniConfig struct {
	Type    string      `json:"type"`
	Bridge  string      `json:"bridge"`
	Master  string      `json:"master"`
	VLAN    int32       `json:"vlan"`
	MTU     int32       `json:"mtu"`
	Plugins []cniConfig `json:"plugins"`
}

func parseCNI(raw string) cniConfig {
	var c cniConfig
	if json.Unmarshal([]byte(raw), &c) != nil {
		return cniConfig{}
	}
	if c.Type == "" && len(c.Plugins) > 0 {
		return c.Plugins[0]
	}
	return c
}

func segment(kind, name string, vlan int32) string {
	return fmt.Sprintf("%s/%s/%d", kind, name, vlan)
}

func refuse(network *vmv1alpha1.NetworkConfig, reason, format string, args ...any) *Refusal {
	return &Refusal{Network: network.Name, Reason: reason, Message: "network " + network.Name + ": " + fmt.Sprintf(format, args...)}
}
