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
	"strconv"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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
	// Held resolves networks as a revoked profile's still-living instance
	// is attached: the HostNetworks' namespace, VLAN and MTU rules and
	// their deletion are not applied, so that its segments (where it still
	// holds its addresses, and whose HostNetwork it still uses) are known.
	Held bool
	Policy
}

// Refusal is why a network may not attach: a condition reason and message.
type Refusal struct {
	Network string
	Reason  string
	Message string
	// Revokes is true when a HostNetwork's explicit rule (namespaceSelector,
	// allowedVLANs, mtu) excludes the network, or the HostNetwork is being
	// deleted: a VM attached there is taken off the segment. Any other
	// refusal (a HostNetwork not found, not Ready, a mismatch) may be
	// transient and leaves a running VM alone.
	Revokes bool
	// Restore says what gives the access back (names the HostNetwork and
	// its field); set when Revokes is.
	Restore string
}

// revoking marks a refusal as a revocation, with what restores it.
func revoking(refusal *Refusal, format string, args ...any) *Refusal {
	refusal.Revokes = true
	refusal.Restore = fmt.Sprintf(format, args...)
	return refusal
}

// Resolve resolves every network of the profile, or says why one is refused.
func Resolve(profile *vmv1alpha1.VirtualMachineProfile, in Inputs) ([]desired.Attachment, *Refusal) {
	attachments := make([]desired.Attachment, 0, len(profile.Spec.Networks))
	for i := range profile.Spec.Networks {
		a, refusal := resolveNetwork(profile, &profile.Spec.Networks[i], in)
		if refusal != nil {
			return nil, refusal
		}
		// Checked once the segment is known, generated or named alike.
		if refusal := addressAllowed(&profile.Spec.Networks[i], fmt.Sprintf("spec.networks[%d].ipConfig.address", i), a.Declared, a.VLAN); refusal != nil {
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
	if in.Held {
		return declared(a, hostNetwork)
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

// allowed applies the HostNetwork's rules to a generated attachment:
// namespace, VLAN, MTU.
func allowed(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig, h *vmv1alpha1.HostNetwork, namespaceLabels map[string]string) *Refusal {
	if refusal := allowedOn(profile, network, "", h, rule{vlan: network.VLANID, mtu: network.MTU}, namespaceLabels); refusal != nil {
		return refusal
	}
	if network.Type == vmv1alpha1.NetworkTypeMacvlan && network.VLANID == nil && len(h.Spec.Uplinks) > 1 {
		return refuse(network, vmv1alpha1.ReasonHostNetworkMismatch,
			"HostNetwork %s has a different uplink per node group, so an untagged macvlan has no single master: set a vlanId", h.Name)
	}
	return accepting(profile, network, "", h)
}

// rule is what an attachment asks of a HostNetwork: a VLAN (nil:
// untagged) and an MTU (nil: the host's).
type rule struct {
	vlan, mtu *int32
}

// allowedOn checks a namespace, VLAN and MTU against a HostNetwork, the
// same for a generated attachment and for a named one (field then names
// the profile field and the attachment, for the message). An untagged
// attachment on a network with allowedVLANs is refused unless the network
// says untagged: Allowed: without a tag a macvlan or VF sits on the
// uplink's native VLAN, and its guest can tag frames onto any VLAN of the
// trunk.
func allowedOn(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig, field string, h *vmv1alpha1.HostNetwork,
	want rule, namespaceLabels map[string]string) *Refusal {
	selector, err := metav1.LabelSelectorAsSelector(&h.Spec.NamespaceSelector)
	if err != nil || !selector.Matches(labels.Set(namespaceLabels)) {
		return revoking(refuse(network, vmv1alpha1.ReasonNamespaceNotAllowed, "%sHostNetwork %s does not allow namespace %s (its namespaceSelector)", prefix(field), h.Name, profile.Namespace),
			"HostNetwork %s's spec.namespaceSelector selects namespace %s again", h.Name, profile.Namespace)
	}
	if want.vlan != nil && !h.Spec.AllowsVLAN(*want.vlan) {
		return revoking(refuse(network, vmv1alpha1.ReasonVLANNotAllowed, "%sVLAN %d is not allowed on HostNetwork %s (allowed: %s)", prefix(field), *want.vlan, h.Name, allowedList(h)),
			"HostNetwork %s's spec.allowedVLANs includes VLAN %d again", h.Name, *want.vlan)
	}
	// Not revoking: a controller upgrade brings this rule to HostNetworks
	// that allowed untagged use before, and an upgrade is no admin asking
	// to take running VMs off their network. Their profiles are refused
	// (no new VM, no update) until the admin sets untagged or a vlanId.
	if want.vlan == nil && !h.Spec.AllowsUntagged() {
		return refuse(network, vmv1alpha1.ReasonVLANNotAllowed, "%suntagged use is not allowed on HostNetwork %s: set a vlanId among its allowedVLANs (%s), "+
			"or a cluster admin sets its spec.untagged to Allowed", prefix(field), h.Name, allowedList(h))
	}
	if want.mtu != nil && *want.mtu > h.Spec.EffectiveMTU() {
		return revoking(refuse(network, vmv1alpha1.ReasonMTUTooLarge, "%smtu %d is above HostNetwork %s's %d", prefix(field), *want.mtu, h.Name, h.Spec.EffectiveMTU()),
			"HostNetwork %s's spec.mtu is %d or more again", h.Name, *want.mtu)
	}
	return nil
}

func prefix(field string) string {
	if field == "" {
		return ""
	}
	return field + ": "
}

// accepting gates users. A HostNetwork being deleted takes none and
// revokes those it has: the admin removes the segment, so VMs leave it
// (the deletion waits until their instances are gone). One not Ready
// because it conflicts with an older one or cannot be built takes no new
// users, since a VM put there would be cut off or never placed; a profile
// whose status already shows this network on this HostNetwork is an
// existing user and keeps its attachment: a HostNetwork's health is no
// rule that excludes it, and may pass.
func accepting(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig, field string, h *vmv1alpha1.HostNetwork) *Refusal {
	if !h.DeletionTimestamp.IsZero() {
		return revoking(refuse(network, vmv1alpha1.ReasonHostNetworkNotAccepting, "%sHostNetwork %s is being deleted and accepts no users", prefix(field), h.Name),
			"HostNetwork %s is declared again", h.Name)
	}
	why := closed(h)
	if why == "" || ExistingUser(profile, network.Name, h.Name) {
		return nil
	}
	return refuse(network, vmv1alpha1.ReasonHostNetworkNotAccepting, "%sHostNetwork %s accepts no new users: %s", prefix(field), h.Name, why)
}

// closedReasons are the Ready=False reasons that no wait cures: the admin
// must change a HostNetwork. A network not yet verified on its nodes
// (NodesNotVerified, NoNodesSelected) stays open: it is being built, and
// placement already keeps VMs off every node that does not have it, so a
// new profile waits there (NoEligibleNodes) instead of failing.
var closedReasons = []string{vmv1alpha1.ReasonBridgeConflict, vmv1alpha1.ReasonUplinkConflict, vmv1alpha1.ReasonUplinkGroupsOverlap, vmv1alpha1.ReasonNMStateMissing}

// closed says why a HostNetwork that is not being deleted takes no new
// users, or "".
func closed(h *vmv1alpha1.HostNetwork) string {
	ready := meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionReady)
	if ready == nil || ready.Status == metav1.ConditionTrue || !slices.Contains(closedReasons, ready.Reason) {
		return ""
	}
	return fmt.Sprintf("it is not Ready (%s: %s)", ready.Reason, ready.Message)
}

// ExistingUser says whether a profile's status shows its network attached
// to the HostNetwork: it was admitted before and is not cut now.
func ExistingUser(profile *vmv1alpha1.VirtualMachineProfile, network, hostNetwork string) bool {
	return slices.ContainsFunc(profile.Status.Networks, func(s vmv1alpha1.NetworkStatus) bool {
		return s.Name == network && s.HostNetwork == hostNetwork
	})
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
// config says which host network it reaches (see reach): one a HostNetwork
// declares gets exactly that HostNetwork's rules, as a generated attachment
// would; one nothing declares is refused like an undeclared network. Its
// segment is what static addresses are checked across.
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
	field := fmt.Sprintf("%s %s", nadField(profile, a.Network), a.NAD)
	reaches, err := parseCNI(nad.Spec.Config)
	if err != nil && !in.AllowUndeclared {
		return a, refuse(a.Network, vmv1alpha1.ReasonHostNetworkNotDeclared, "%s: %v", field, err)
	}
	// The MTU may be set by any plugin of a list (tuning sets it too).
	var mtu int32
	for _, plugin := range reaches {
		mtu = max(mtu, plugin.MTU)
	}
	first := true
	for _, plugin := range reaches {
		r, unjudged := reach(plugin, nad, in.HostNetworks)
		if unjudged != "" && !in.AllowUndeclared {
			return a, refuse(a.Network, vmv1alpha1.ReasonHostNetworkNotDeclared, "%s: %s; a cluster admin declares it with a HostNetwork (kubectl get hostnetworks)", field, unjudged)
		}
		if r.host == "" {
			continue // reaches no host network (tuning, an overlay), or cannot be judged and undeclared networks are allowed
		}
		if r.declared == nil && !in.AllowUndeclared {
			return a, refuse(a.Network, vmv1alpha1.ReasonHostNetworkNotDeclared, "%s: no HostNetwork declares %s; a cluster admin declares it with a HostNetwork (kubectl get hostnetworks)", field, r.host)
		}
		if r.declared != nil && !in.Held {
			if refusal := singleVLAN(a.Network, field, plugin, r.declared); refusal != nil {
				return a, refusal
			}
			if refusal := allowedOn(profile, a.Network, field, r.declared, rule{vlan: optional(r.vlan), mtu: optional(mtu)}, in.NamespaceLabels); refusal != nil {
				return a, refusal
			}
			if refusal := accepting(profile, a.Network, field, r.declared); refusal != nil {
				return a, refusal
			}
		}
		if first {
			a = r.fill(a, mtu)
			first = false
		}
	}
	return a, nil
}

// singleVLAN refuses a named bridge config that puts the VM on more VLANs
// than its own: vlanTrunk passes tagged VLANs the allowed list never saw,
// and preserveDefaultVlan keeps VLAN 1 on a tagged port beside its VLAN.
func singleVLAN(network *vmv1alpha1.NetworkConfig, field string, plugin cniConfig, h *vmv1alpha1.HostNetwork) *Refusal {
	if plugin.Type != "bridge" {
		return nil
	}
	switch {
	case len(plugin.VLANTrunk) > 0 && string(plugin.VLANTrunk) != "null" && string(plugin.VLANTrunk) != "[]":
		return refuse(network, vmv1alpha1.ReasonVLANNotAllowed, "%svlanTrunk is not allowed on HostNetwork %s: a VM there is on one VLAN (its vlan)", prefix(field), h.Name)
	case plugin.VLAN != 0 && plugin.PreserveDefaultVLAN != nil && *plugin.PreserveDefaultVLAN:
		return refuse(network, vmv1alpha1.ReasonVLANNotAllowed, "%spreserveDefaultVlan is not allowed on HostNetwork %s: it keeps VLAN 1 on the VM's port beside VLAN %d", prefix(field), h.Name, plugin.VLAN)
	}
	return nil
}

// nadField names the profile field a named attachment comes from.
func nadField(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) string {
	for i := range profile.Spec.Networks {
		if profile.Spec.Networks[i].Name == network.Name {
			return fmt.Sprintf("spec.networks[%d].nadName", i)
		}
	}
	return "nadName"
}

func optional(v int32) *int32 {
	if v == 0 {
		return nil
	}
	return &v
}

// reached is where one plugin of a named attachment lands on the host.
type reached struct {
	kind vmv1alpha1.NetworkType
	// host names the host bridge, interface or resource reached, for
	// messages; "" when the plugin reaches no host network.
	host     string
	declared *vmv1alpha1.HostNetwork
	vlan     int32
	// name is the bridge, master or resource as the segment names it.
	name string
	// bridge, master and resource fill the attachment.
	bridge, master, resource string
}

func (r reached) fill(a desired.Attachment, mtu int32) desired.Attachment {
	a.Type, a.Bridge, a.Master, a.ResourceName, a.VLAN, a.MTU = r.kind, r.bridge, r.master, r.resource, r.vlan, mtu
	if r.declared != nil {
		a.Declared = r.declared
		a.Segment = segment("hostnetwork", r.declared.Name, r.vlan)
		return a
	}
	a.Segment = segment(string(r.kind), r.name, r.vlan)
	return a
}

// hostOnlyPlugins reach no host network: they tune, route or filter the
// interface another plugin made, or live in the pod alone.
var hostOnlyPlugins = []string{"tuning", "portmap", "bandwidth", "firewall", "sbr", "loopback", "static", "dhcp", "host-local", "whereabouts", "vrf"}

// reach says which host network one CNI plugin config lands on, or why it
// cannot be judged (a plugin naming a host interface in a way this parser
// does not know is refused: it could reach anything). Plugins that name no
// host interface at all (an overlay, tuning) reach nothing and pass.
func reach(plugin cniConfig, nad *nadv1.NetworkAttachmentDefinition, all []vmv1alpha1.HostNetwork) (reached, string) {
	switch plugin.Type {
	case "bridge", "ovs":
		kind := vmv1alpha1.NetworkType(plugin.Type)
		bridge := plugin.Bridge
		if bridge == "" && kind == vmv1alpha1.NetworkTypeBridge {
			bridge = "cni0" // the bridge plugin's default
		}
		if bridge == "" {
			return reached{}, "an ovs config without a bridge cannot be judged"
		}
		r := reached{kind: kind, host: "bridge " + bridge, name: bridge, bridge: bridge, vlan: plugin.VLAN}
		r.declared = declaringBridge(all, kind, bridge)
		return r, ""
	case "macvlan", "ipvlan":
		if plugin.Master == "" {
			// The same segment as an undeclared generated macvlan network.
			return reached{kind: vmv1alpha1.NetworkTypeMacvlan, host: "the default route's interface", name: "default-route"},
				plugin.Type + " without master reaches the default route's interface, which no HostNetwork declares"
		}
		r := reached{kind: vmv1alpha1.NetworkTypeMacvlan, host: "interface " + plugin.Master, name: plugin.Master, master: plugin.Master}
		r.declared, r.vlan = declaringInterface(all, plugin.Master)
		return r, ""
	case "host-device":
		if plugin.Device == "" {
			return reached{}, "a host-device config without device (by PCI address or MAC) cannot be judged"
		}
		r := reached{kind: vmv1alpha1.NetworkType("host-device"), host: "interface " + plugin.Device, name: plugin.Device}
		r.declared, r.vlan = declaringInterface(all, plugin.Device)
		return r, ""
	case "sriov":
		resource := nad.Annotations[vmv1alpha1.AnnotationResourceName]
		if resource == "" {
			return reached{}, "an sriov config without the " + vmv1alpha1.AnnotationResourceName + " annotation cannot be judged"
		}
		r := reached{kind: vmv1alpha1.NetworkTypeSRIOV, host: "SR-IOV resource " + resource, name: resource, resource: resource, vlan: plugin.VLAN}
		r.declared = declaringResource(all, resource)
		return r, ""
	}
	if slices.Contains(hostOnlyPlugins, plugin.Type) {
		return reached{}, ""
	}
	if plugin.Master != "" || plugin.Bridge != "" || plugin.Device != "" || plugin.PFName != "" || plugin.DeviceID != "" {
		return reached{}, fmt.Sprintf("plugin type %q names a host interface the operator cannot judge", plugin.Type)
	}
	return reached{}, ""
}

func declaringBridge(all []vmv1alpha1.HostNetwork, kind vmv1alpha1.NetworkType, bridge string) *vmv1alpha1.HostNetwork {
	return oldest(all, func(h *vmv1alpha1.HostNetwork) bool { return h.Spec.Type == kind && h.Spec.BridgeName == bridge })
}

func declaringResource(all []vmv1alpha1.HostNetwork, resource string) *vmv1alpha1.HostNetwork {
	return oldest(all, func(h *vmv1alpha1.HostNetwork) bool {
		return h.Spec.Type == vmv1alpha1.NetworkTypeSRIOV && h.Spec.SRIOV != nil && h.Spec.SRIOV.ResourceName == resource
	})
}

// declaringInterface finds the HostNetwork a host interface belongs to: an
// uplink (or bond port) of any HostNetwork, a VLAN sub-interface of one
// (uplink.VLAN, or the managed name the operator builds), or a declared
// bridge. It returns the VLAN a sub-interface carries.
func declaringInterface(all []vmv1alpha1.HostNetwork, iface string) (*vmv1alpha1.HostNetwork, int32) {
	var vlan int32
	found := oldest(all, func(h *vmv1alpha1.HostNetwork) bool {
		if h.Spec.BridgeName == iface {
			return true
		}
		for i := range h.Spec.Uplinks {
			uplink := &h.Spec.Uplinks[i]
			if slices.Contains(desired.UplinkClaims(uplink), iface) {
				return true
			}
			base, id, ok := strings.Cut(iface, ".")
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(id, 10, 32)
			if err != nil {
				continue
			}
			if base == desired.UplinkInterface(uplink) || desired.VLANInterfaceName(h.Name, int32(n)) == iface {
				return true
			}
		}
		return false
	})
	if found != nil {
		if _, id, ok := strings.Cut(iface, "."); ok && found.Spec.BridgeName != iface {
			if n, err := strconv.ParseInt(id, 10, 32); err == nil {
				vlan = int32(n)
			}
		}
	}
	return found, vlan
}

func oldest(all []vmv1alpha1.HostNetwork, match func(*vmv1alpha1.HostNetwork) bool) *vmv1alpha1.HostNetwork {
	var found *vmv1alpha1.HostNetwork
	for i := range all {
		if match(&all[i]) && (found == nil || Older(&all[i], found)) {
			found = &all[i]
		}
	}
	return found
}

// cniConfig is the part of a CNI plugin config that says where it attaches.
type cniConfig struct {
	Type     string      `json:"type"`
	Bridge   string      `json:"bridge"`
	Master   string      `json:"master"`
	Device   string      `json:"device"`
	PFName   string      `json:"pfName"`
	DeviceID string      `json:"deviceID"`
	VLAN     int32       `json:"vlan"`
	MTU      int32       `json:"mtu"`
	Plugins  []cniConfig `json:"plugins"`
	// VLANTrunk and PreserveDefaultVLAN (bridge) put a port on more VLANs.
	VLANTrunk           json.RawMessage `json:"vlanTrunk"`
	PreserveDefaultVLAN *bool           `json:"preserveDefaultVlan"`
}

// parseCNI returns the plugins of a config: itself, or each of a conflist's
// plugins. A config that does not parse cannot be judged.
func parseCNI(raw string) ([]cniConfig, error) {
	var c cniConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("its config is not a CNI config the operator can read: %w", err)
	}
	if c.Type == "" && len(c.Plugins) > 0 {
		return c.Plugins, nil
	}
	return []cniConfig{c}, nil
}

func segment(kind, name string, vlan int32) string {
	return fmt.Sprintf("%s/%s/%d", kind, name, vlan)
}

func refuse(network *vmv1alpha1.NetworkConfig, reason, format string, args ...any) *Refusal {
	return &Refusal{Network: network.Name, Reason: reason, Message: "network " + network.Name + ": " + fmt.Sprintf(format, args...)}
}
