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

// PolicyName is the policy that builds one uplink group of a HostNetwork:
// vmop-<name> for a network with one uplink, vmop-<name>.<group> with
// several, the group named by a hash of its node selector (stable when the
// admin reorders the list). HostNetwork names are DNS labels (no dots), so
// the HostNetwork is the part before the first dot.
func PolicyName(hostNetwork *vmv1alpha1.HostNetwork, uplink *vmv1alpha1.Uplink) string {
	name := PolicyPrefix + hostNetwork.Name
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

// RevertState undoes what a policy's desired state built, to be applied
// before the policy is deleted (deleting a policy does not revert the host):
// bridges, VLAN sub-interfaces and bonds go, a PF's VFs go back to 0. NICs
// themselves and their MTU are left as they are. Stacked interfaces are
// listed before the ones beneath them.
func RevertState(built nmstateshared.State) (nmstateshared.State, error) {
	doc, err := nmstate.Parse(built.Raw)
	if err != nil {
		return nmstateshared.State{}, fmt.Errorf("reading the policy's desired state: %w", err)
	}
	var revert []nmstate.Interface
	for i := len(doc.Interfaces) - 1; i >= 0; i-- {
		iface := doc.Interfaces[i]
		switch {
		case iface.Type == nmstate.TypeEthernet && iface.Ethernet != nil && iface.Ethernet.SRIOV != nil:
			revert = append(revert, nmstate.Interface{Name: iface.Name, Type: nmstate.TypeEthernet, State: nmstate.StateUp,
				Ethernet: &nmstate.Ethernet{SRIOV: &nmstate.SRIOV{TotalVFs: new(int32)}}})
		case iface.Type == nmstate.TypeEthernet:
			// A NIC is not ours to remove.
		default:
			revert = append(revert, nmstate.Interface{Name: iface.Name, Type: iface.Type, State: nmstate.StateAbsent})
		}
	}
	return nmstate.State{Interfaces: revert}.Policy(), nil
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
