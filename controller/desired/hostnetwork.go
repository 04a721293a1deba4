package desired

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// nmstate interface types the operator configures.
const (
	nmLinuxBridge = "linux-bridge"
	nmVLAN        = "vlan"
	nmOVSBridge   = "ovs-bridge"
	nmBondType    = "bond"
	nmEthernet    = "ethernet"
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

// nmstate's desired-state document, typed so that no string template can go wrong.
type nmState struct {
	Interfaces []nmInterface `json:"interfaces"`
}

type nmInterface struct {
	Name            string             `json:"name"`
	Type            string             `json:"type"`
	State           string             `json:"state"`
	MTU             int32              `json:"mtu,omitempty"`
	IPv4            *nmIP              `json:"ipv4,omitempty"`
	IPv6            *nmIP              `json:"ipv6,omitempty"`
	Bridge          *nmBridge          `json:"bridge,omitempty"`
	VLAN            *nmVLANCfg         `json:"vlan,omitempty"`
	LinkAggregation *nmLinkAggregation `json:"link-aggregation,omitempty"`
	Ethernet        *nmEthernetCfg     `json:"ethernet,omitempty"`
}

type nmIP struct {
	Enabled bool `json:"enabled"`
}

type nmBridge struct {
	Options *nmBridgeOptions `json:"options,omitempty"`
	Port    []nmPort         `json:"port"`
}

type nmBridgeOptions struct {
	STP nmSTP `json:"stp"`
}

type nmSTP struct {
	Enabled bool `json:"enabled"`
}

type nmPort struct {
	Name string      `json:"name"`
	VLAN *nmPortVLAN `json:"vlan,omitempty"`
}

type nmPortVLAN struct {
	Mode      string       `json:"mode"`
	TrunkTags []nmTrunkTag `json:"trunk-tags"`
}

type nmTrunkTag struct {
	ID      int32      `json:"id,omitempty"`
	IDRange *nmIDRange `json:"id-range,omitempty"`
}

type nmIDRange struct {
	Min int32 `json:"min"`
	Max int32 `json:"max"`
}

type nmVLANCfg struct {
	BaseIface string `json:"base-iface"`
	ID        int32  `json:"id"`
}

type nmLinkAggregation struct {
	Mode string   `json:"mode"`
	Port []string `json:"port"`
}

type nmEthernetCfg struct {
	SRIOV nmSRIOV `json:"sr-iov"`
}

type nmSRIOV struct {
	TotalVFs int32 `json:"total-vfs"`
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
	off := &nmIP{Enabled: false}
	base := UplinkInterface(uplink)
	var interfaces []nmInterface
	if uplink.Bond != nil {
		interfaces = append(interfaces, nmInterface{Name: uplink.Bond.Name, Type: nmBondType, State: "up", MTU: mtu, IPv4: off, IPv6: off,
			LinkAggregation: &nmLinkAggregation{Mode: string(uplink.Bond.Mode), Port: uplink.Bond.Ports}})
	} else if mtu != 0 || spec.Type == vmv1alpha1.NetworkTypeSRIOV {
		nic := nmInterface{Name: base, Type: nmEthernet, State: "up", MTU: mtu}
		if spec.Type == vmv1alpha1.NetworkTypeSRIOV && spec.SRIOV != nil && spec.SRIOV.NumVFs != nil {
			nic.Ethernet = &nmEthernetCfg{SRIOV: nmSRIOV{TotalVFs: *spec.SRIOV.NumVFs}}
		}
		interfaces = append(interfaces, nic)
	}
	switch spec.Type {
	case vmv1alpha1.NetworkTypeBridge:
		port := nmPort{Name: base}
		if len(spans) > 0 {
			// A trunk port makes nmstate turn on VLAN filtering on the bridge;
			// the bridge CNI then tags each VM port with its own VLAN.
			port.VLAN = &nmPortVLAN{Mode: "trunk", TrunkTags: trunkTags(spans)}
		}
		interfaces = append(interfaces, nmInterface{Name: spec.BridgeName, Type: nmLinuxBridge, State: "up", MTU: mtu, IPv4: off, IPv6: off,
			Bridge: &nmBridge{Options: &nmBridgeOptions{}, Port: []nmPort{port}}})
	case vmv1alpha1.NetworkTypeOVS:
		interfaces = append(interfaces, nmInterface{Name: spec.BridgeName, Type: nmOVSBridge, State: "up",
			Bridge: &nmBridge{Port: []nmPort{{Name: base}}}})
	case vmv1alpha1.NetworkTypeMacvlan:
		for _, span := range spans {
			for id := span.From; id <= span.To; id++ {
				interfaces = append(interfaces, nmInterface{Name: VLANInterfaceName(hostNetwork.Name, id), Type: nmVLAN, State: "up", MTU: mtu,
					IPv4: off, IPv6: off, VLAN: &nmVLANCfg{BaseIface: base, ID: id}})
			}
		}
	}
	return toState(nmState{Interfaces: interfaces}), nil
}

func trunkTags(spans []vmv1alpha1.VLANSpan) []nmTrunkTag {
	tags := make([]nmTrunkTag, 0, len(spans))
	for _, span := range spans {
		if span.From == span.To {
			tags = append(tags, nmTrunkTag{ID: span.From})
		} else {
			tags = append(tags, nmTrunkTag{IDRange: &nmIDRange{Min: span.From, Max: span.To}})
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
	var doc nmState
	// nmstate's State reads back from the apiserver as YAML.
	if err := yaml.Unmarshal(built.Raw, &doc); err != nil {
		return nmstateshared.State{}, fmt.Errorf("reading the policy's desired state: %w", err)
	}
	var revert []nmInterface
	for i := len(doc.Interfaces) - 1; i >= 0; i-- {
		iface := doc.Interfaces[i]
		switch {
		case iface.Type == nmEthernet && iface.Ethernet != nil:
			revert = append(revert, nmInterface{Name: iface.Name, Type: nmEthernet, State: "up",
				Ethernet: &nmEthernetCfg{SRIOV: nmSRIOV{TotalVFs: 0}}})
		case iface.Type == nmEthernet:
			// A NIC is not ours to remove.
		default:
			revert = append(revert, nmInterface{Name: iface.Name, Type: iface.Type, State: "absent"})
		}
	}
	return toState(nmState{Interfaces: revert}), nil
}

func toState(state nmState) nmstateshared.State {
	raw, _ := json.Marshal(state) // plain structs of strings, ints and bools always marshal
	return nmstateshared.NewState(string(raw))
}

// HostNetworkPolicy is the policy for one uplink group of a managed
// HostNetwork, owned by it.
func HostNetworkPolicy(hostNetwork *vmv1alpha1.HostNetwork, uplink *vmv1alpha1.Uplink, state nmstateshared.State) *nmstatev1.NodeNetworkConfigurationPolicy {
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   PolicyName(hostNetwork, uplink),
			Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelHostNetwork: hostNetwork.Name},
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
	if policy.GetLabels()[LabelManagedBy] != ManagedByValue {
		return ""
	}
	return policy.GetLabels()[LabelHostNetwork]
}
