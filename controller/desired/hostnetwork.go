package desired

import (
	"fmt"
	"maps"
	"sort"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/api/nmstate"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// PolicyPrefix starts the name of every NodeNetworkConfigurationPolicy the
// operator makes.
const PolicyPrefix = "vmop-"

// maxPolicyName keeps a policy's name a label value: nmstate labels each
// enactment with it.
const maxPolicyName = 63

// PolicyName is the policy that builds one uplink group of a HostNetwork:
// vmop-<name>.<group> for a named group (the group name hashed when the
// whole does not fit 63 characters), so that editing the group's selector
// or interface updates the same policy. An unnamed group keeps the name
// earlier releases gave it, so that an upgrade renames nothing:
// vmop-<name> for a network with one uplink, vmop-<name>.<hash of its node
// selector> with several. HostNetwork names are DNS labels (no dots), so
// the HostNetwork is the part before the first dot.
func PolicyName(hostNetwork *vmv1alpha1.HostNetwork, uplink *vmv1alpha1.Uplink) string {
	name := PolicyPrefix + hostNetwork.Name
	if uplink.Name != "" {
		if len(name)+1+len(uplink.Name) > maxPolicyName {
			return name + "." + hashOf(uplink.Name)[:6]
		}
		return name + "." + uplink.Name
	}
	if len(hostNetwork.Spec.Uplinks) <= 1 {
		return name
	}
	keys := sortedKeys(uplink.NodeSelector)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+uplink.NodeSelector[k])
	}
	return name + "." + hashOf(parts...)[:6]
}

// RevertPolicyName is the revert policy of a HostNetwork for one target
// (a node, or a policy reverted on all its nodes): vmop-<name>.r<hash>,
// as long a hash as fits 63 characters (at least 6 hex digits).
func RevertPolicyName(hostNetwork, target string) string {
	name := PolicyPrefix + hostNetwork + ".r"
	return name + hashOf(target)[:min(10, maxPolicyName-len(name))]
}

// VLANInterfaceName is the VLAN sub-interface a managed macvlan network
// builds for a VLAN. It is named after the HostNetwork, not the uplink, so
// it is the same on every node group (the attachment names one master for
// all nodes) and two networks can never collide; a name that does not fit
// Linux's 15 characters is shortened to a hash.
func VLANInterfaceName(hostNetwork string, vlan int32) string {
	suffix := fmt.Sprintf(".%d", vlan)
	if len(hostNetwork)+len(suffix) <= 15 {
		return hostNetwork + suffix
	}
	return "hn" + hashOf(hostNetwork)[:8] + suffix
}

// UplinkInterface is the interface an uplink names or builds.
func UplinkInterface(uplink *vmv1alpha1.Uplink) string {
	if uplink.Bond != nil {
		return uplink.Bond.Name
	}
	return uplink.Interface
}

// UplinkClaims are the interfaces an uplink group takes over on its nodes:
// the NIC, or the bond and its ports. Two HostNetworks must not claim one
// on the same node.
func UplinkClaims(uplink *vmv1alpha1.Uplink) []string {
	if uplink.Bond == nil {
		return []string{uplink.Interface}
	}
	return append([]string{uplink.Bond.Name}, uplink.Bond.Ports...)
}

// PolicyNodeSelector selects the nodes of one uplink group.
func PolicyNodeSelector(hostNetwork *vmv1alpha1.HostNetwork, uplink *vmv1alpha1.Uplink) map[string]string {
	selector := maps.Clone(hostNetwork.Spec.NodeSelector)
	if selector == nil && len(uplink.NodeSelector) > 0 {
		selector = map[string]string{}
	}
	maps.Copy(selector, uplink.NodeSelector)
	return selector
}

// HostNetworkState is nmstate's document for one uplink group of a managed
// HostNetwork: the bond (if the uplink is one), the uplink's MTU, and the
// bridge trunking every allowed VLAN, the OVS bridge, the VLAN
// sub-interfaces, or the PF's VF count.
func HostNetworkState(hostNetwork *vmv1alpha1.HostNetwork, uplink *vmv1alpha1.Uplink) (nmstateshared.State, error) {
	spec := &hostNetwork.Spec
	spans, err := vmv1alpha1.Spans(spec.AllowedVLANs)
	if err != nil {
		return nmstateshared.State{}, err
	}
	mtu := int32(0)
	if spec.MTU != nil {
		mtu = *spec.MTU
	}
	off := &nmstate.IP{Enabled: false}
	base := UplinkInterface(uplink)
	var interfaces []nmstate.Interface
	if uplink.Bond != nil {
		interfaces = append(interfaces, nmstate.Interface{Name: uplink.Bond.Name, Type: nmstate.TypeBond, State: nmstate.StateUp, MTU: mtu,
			IPv4: off, IPv6: off, LinkAggregation: &nmstate.LinkAggregation{Mode: string(uplink.Bond.Mode), Port: uplink.Bond.Ports}})
	} else if mtu != 0 || spec.Type == vmv1alpha1.NetworkTypeSRIOV {
		nic := nmstate.Interface{Name: base, Type: nmstate.TypeEthernet, State: nmstate.StateUp, MTU: mtu}
		if spec.Type == vmv1alpha1.NetworkTypeSRIOV && spec.SRIOV != nil && spec.SRIOV.NumVFs != nil {
			nic.Ethernet = &nmstate.Ethernet{SRIOV: &nmstate.SRIOV{TotalVFs: spec.SRIOV.NumVFs}}
		}
		interfaces = append(interfaces, nic)
	}
	switch spec.Type {
	case vmv1alpha1.NetworkTypeBridge:
		port := nmstate.Port{Name: base}
		if len(spans) > 0 {
			// A trunk port makes nmstate turn on VLAN filtering on the bridge;
			// the bridge CNI then tags each VM port with its own VLAN.
			port.VLAN = &nmstate.PortVLAN{Mode: "trunk", TrunkTags: trunkTags(spans)}
		}
		interfaces = append(interfaces, nmstate.Interface{Name: spec.BridgeName, Type: nmstate.TypeLinuxBridge, State: nmstate.StateUp, MTU: mtu,
			IPv4: off, IPv6: off, Bridge: &nmstate.Bridge{Options: &nmstate.BridgeOptions{}, Port: []nmstate.Port{port}}})
	case vmv1alpha1.NetworkTypeOVS:
		interfaces = append(interfaces, nmstate.Interface{Name: spec.BridgeName, Type: nmstate.TypeOVSBridge, State: nmstate.StateUp,
			Bridge: &nmstate.Bridge{Port: []nmstate.Port{{Name: base}}}})
	case vmv1alpha1.NetworkTypeMacvlan:
		for _, span := range spans {
			for id := span.From; id <= span.To; id++ {
				interfaces = append(interfaces, nmstate.Interface{Name: VLANInterfaceName(hostNetwork.Name, id), Type: nmstate.TypeVLAN,
					State: nmstate.StateUp, MTU: mtu, IPv4: off, IPv6: off, VLAN: &nmstate.VLAN{BaseIface: base, ID: id}})
			}
		}
	}
	return nmstate.State{Interfaces: interfaces}.Policy(), nil
}

func trunkTags(spans []vmv1alpha1.VLANSpan) []nmstate.TrunkTag {
	tags := make([]nmstate.TrunkTag, 0, len(spans))
	for _, span := range spans {
		if span.From == span.To {
			tags = append(tags, nmstate.TrunkTag{ID: span.From})
		} else {
			tags = append(tags, nmstate.TrunkTag{IDRange: &nmstate.IDRange{Min: span.From, Max: span.To}})
		}
	}
	return tags
}

// BuiltInterface is one interface a policy builds on a node and a revert
// can take away: a bridge, bond or VLAN sub-interface, or a PF's VFs.
type BuiltInterface struct {
	Name string
	Type string
	// VFs is the VF count a policy sets on an SR-IOV PF; nil for any other.
	VFs *int32
}

// Built lists what a policy's desired state builds, in its order. NICs
// whose MTU it only sets are left out: a NIC is not ours to remove.
func Built(state nmstateshared.State) ([]BuiltInterface, error) {
	doc, err := nmstate.Parse(state.Raw)
	if err != nil {
		return nil, fmt.Errorf("reading the policy's desired state: %w", err)
	}
	var built []BuiltInterface
	for _, iface := range doc.Interfaces {
		switch {
		case iface.State == nmstate.StateAbsent:
		case iface.Type == nmstate.TypeEthernet && iface.Ethernet != nil && iface.Ethernet.SRIOV != nil && iface.Ethernet.SRIOV.TotalVFs != nil:
			built = append(built, BuiltInterface{Name: iface.Name, Type: iface.Type, VFs: iface.Ethernet.SRIOV.TotalVFs})
		case iface.Type == nmstate.TypeEthernet:
		default:
			built = append(built, BuiltInterface{Name: iface.Name, Type: iface.Type})
		}
	}
	return built, nil
}

// RevertOf is the desired state that undoes built interfaces: bridges,
// VLAN sub-interfaces and bonds go, a PF's VFs go back to 0. Stacked
// interfaces come first, so built is reversed (Built lists them from the
// bottom up, as the builders write them).
func RevertOf(built []BuiltInterface) nmstateshared.State {
	revert := make([]nmstate.Interface, 0, len(built))
	for i := len(built) - 1; i >= 0; i-- {
		iface := built[i]
		if iface.VFs != nil {
			revert = append(revert, nmstate.Interface{Name: iface.Name, Type: nmstate.TypeEthernet, State: nmstate.StateUp,
				Ethernet: &nmstate.Ethernet{SRIOV: &nmstate.SRIOV{TotalVFs: new(int32)}}})
			continue
		}
		revert = append(revert, nmstate.Interface{Name: iface.Name, Type: iface.Type, State: nmstate.StateAbsent})
	}
	return nmstate.State{Interfaces: revert}.Policy()
}

// Reverted lists what a revert state (RevertOf's) undoes, bottom-up as
// Built lists it, so that RevertOf(Reverted(s)) is s again.
func Reverted(revert nmstateshared.State) ([]BuiltInterface, error) {
	doc, err := nmstate.Parse(revert.Raw)
	if err != nil {
		return nil, fmt.Errorf("reading the revert's desired state: %w", err)
	}
	var undone []BuiltInterface
	for i := len(doc.Interfaces) - 1; i >= 0; i-- {
		iface := doc.Interfaces[i]
		switch {
		case iface.Type == nmstate.TypeEthernet && iface.Ethernet != nil && iface.Ethernet.SRIOV != nil:
			undone = append(undone, BuiltInterface{Name: iface.Name, Type: iface.Type, VFs: new(int32)})
		case iface.State == nmstate.StateAbsent:
			undone = append(undone, BuiltInterface{Name: iface.Name, Type: iface.Type})
		}
	}
	return undone, nil
}

// RevertState undoes what a policy's desired state built (see RevertOf).
// Deleting a policy does not revert the host, so this is applied first.
func RevertState(built nmstateshared.State) (nmstateshared.State, error) {
	interfaces, err := Built(built)
	if err != nil {
		return nmstateshared.State{}, err
	}
	return RevertOf(interfaces), nil
}

// RevertPolicy is a revert policy of a HostNetwork: owned by nothing (see
// vmv1alpha1.LabelPolicyRole), on the nodes selector picks.
func RevertPolicy(hostNetwork, target string, selector map[string]string, state nmstateshared.State, annotations map[string]string) *nmstatev1.NodeNetworkConfigurationPolicy {
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        RevertPolicyName(hostNetwork, target),
			Labels:      map[string]string{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelHostNetwork: hostNetwork, vmv1alpha1.LabelPolicyRole: vmv1alpha1.PolicyRoleRevert},
			Annotations: annotations,
		},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{NodeSelector: selector, DesiredState: state},
	}
}

// HostNetworkPolicy is the policy for one uplink group of a managed
// HostNetwork, owned by it.
func HostNetworkPolicy(hostNetwork *vmv1alpha1.HostNetwork, uplink *vmv1alpha1.Uplink, state nmstateshared.State) *nmstatev1.NodeNetworkConfigurationPolicy {
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   PolicyName(hostNetwork, uplink),
			Labels: map[string]string{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelHostNetwork: hostNetwork.Name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(hostNetwork,
				vmv1alpha1.GroupVersion.WithKind("HostNetwork"))},
		},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
			NodeSelector: PolicyNodeSelector(hostNetwork, uplink),
			DesiredState: state,
		},
	}
}

// SRIOVUplinks lists the PF names of an sriov HostNetwork.
func SRIOVUplinks(hostNetwork *vmv1alpha1.HostNetwork) []string {
	var pfs []string
	for i := range hostNetwork.Spec.Uplinks {
		pfs = append(pfs, hostNetwork.Spec.Uplinks[i].Interface)
	}
	sort.Strings(pfs)
	return pfs
}

// HostNetworkOf is the HostNetwork a policy the operator made belongs to,
// or "" for any other policy.
func HostNetworkOf(policy metav1.Object) string {
	if policy.GetLabels()[vmv1alpha1.LabelManagedBy] != vmv1alpha1.ManagedByValue {
		return ""
	}
	return policy.GetLabels()[vmv1alpha1.LabelHostNetwork]
}
