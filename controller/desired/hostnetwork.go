package desired

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// nmstate interface types the operator configures.
const (
	nmLinuxBridge = "linux-bridge"
	nmVLAN        = "vlan"
	nmOVSBridge   = "ovs-bridge"
)

// HostNetwork is the host side one network of one profile needs nmstate to
// build. Several profiles may need the same host interface: their
// HostNetworks merge into one shared policy (see NNCP).
type HostNetwork struct {
	// Interface is the host interface built: a bridge, a VLAN sub-interface or
	// an OVS bridge. It identifies the shared policy.
	Interface string
	// Type is the nmstate interface type.
	Type string
	// Uplink is the NIC or bond the interface rides on.
	Uplink string
	// VLAN is trunked on the uplink (linux-bridge) or is the sub-interface's id (vlan).
	VLAN int32
	// MTU of the interface; 0 keeps the default.
	MTU int32
	// NodeSelector is the profile's highAvailability.nodeSelector.
	NodeSelector map[string]string
}

// HostNetworkFor says what host side a network needs, if the operator builds
// one: only networks with an uplink (the CRD forbids uplink with nadName and
// on SR-IOV networks), and for macvlan only when a VLAN sub-interface is needed.
func HostNetworkFor(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) (HostNetwork, bool) {
	if network.Uplink == "" || network.NADName != "" {
		return HostNetwork{}, false
	}
	host := HostNetwork{Uplink: network.Uplink, NodeSelector: nodeSelector(profile)}
	if network.VLANID != nil {
		host.VLAN = *network.VLANID
	}
	if network.MTU != nil {
		host.MTU = *network.MTU
	}
	switch network.Type {
	case vmv1alpha1.NetworkTypeBridge:
		host.Type, host.Interface = nmLinuxBridge, BridgeName(network)
	case vmv1alpha1.NetworkTypeOVS:
		host.Type, host.Interface = nmOVSBridge, BridgeName(network)
	case vmv1alpha1.NetworkTypeMacvlan:
		if network.VLANID == nil {
			return HostNetwork{}, false // macvlan rides the uplink itself: nothing to build
		}
		host.Type, host.Interface = nmVLAN, MacvlanMaster(network)
	default:
		return HostNetwork{}, false
	}
	return host, true
}

func nodeSelector(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	if profile.Spec.HighAvailability == nil || len(profile.Spec.HighAvailability.NodeSelector) == 0 {
		return nil
	}
	selector := make(map[string]string, len(profile.Spec.HighAvailability.NodeSelector))
	for k, v := range profile.Spec.HighAvailability.NodeSelector {
		selector[k] = string(v)
	}
	return selector
}

var notInObjectName = regexp.MustCompile(`[^a-z0-9-]+`)

// NNCPName is the shared policy that builds a host interface. Interface
// names may hold characters object names may not ('_', upper case, '.'), so
// those names get a hash suffix to stay distinct.
func NNCPName(hostInterface string) string {
	clean := strings.Trim(notInObjectName.ReplaceAllString(strings.ToLower(hostInterface), "-"), "-")
	if clean == hostInterface {
		return "vmop-" + clean
	}
	return "vmop-" + clean + "-" + hashOf(hostInterface)[:6]
}

// Merge combines the host networks of every profile that needs the same
// interface: VLANs are unioned, the largest MTU wins, and the policy selects
// the nodes common to all selectors (the labels every user shares), so each
// user's nodes get the interface. Users that disagree on the uplink or type
// cannot share an interface: that is an error naming both.
func Merge(users []HostNetwork) (merged HostNetwork, vlans []int32, err error) {
	if len(users) == 0 {
		return HostNetwork{}, nil, fmt.Errorf("no users")
	}
	merged = users[0]
	merged.NodeSelector = users[0].NodeSelector
	for _, user := range users {
		if user.Type != merged.Type || user.Uplink != merged.Uplink {
			return HostNetwork{}, nil, fmt.Errorf("host interface %s is wanted as %s on %s and as %s on %s",
				merged.Interface, merged.Type, merged.Uplink, user.Type, user.Uplink)
		}
		if merged.Type == nmVLAN && user.VLAN != merged.VLAN {
			return HostNetwork{}, nil, fmt.Errorf("VLAN interface %s is wanted with id %d and %d", merged.Interface, merged.VLAN, user.VLAN)
		}
		merged.MTU = max(merged.MTU, user.MTU)
		merged.NodeSelector = commonLabels(merged.NodeSelector, user.NodeSelector)
		if user.VLAN != 0 && !slices.Contains(vlans, user.VLAN) {
			vlans = append(vlans, user.VLAN)
		}
	}
	slices.Sort(vlans)
	return merged, vlans, nil
}

func commonLabels(a, b map[string]string) map[string]string {
	common := map[string]string{}
	for k, v := range a {
		if b[k] == v {
			common[k] = v
		}
	}
	if len(common) == 0 {
		return nil
	}
	return common
}

// nmstate's desired-state document, typed so that no string template can go wrong.
type nmState struct {
	Interfaces []nmInterface `json:"interfaces"`
}

type nmInterface struct {
	Name   string     `json:"name"`
	Type   string     `json:"type"`
	State  string     `json:"state"`
	MTU    int32      `json:"mtu,omitempty"`
	IPv4   *nmIP      `json:"ipv4,omitempty"`
	IPv6   *nmIP      `json:"ipv6,omitempty"`
	Bridge *nmBridge  `json:"bridge,omitempty"`
	VLAN   *nmVLANCfg `json:"vlan,omitempty"`
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
	ID int32 `json:"id"`
}

type nmVLANCfg struct {
	BaseIface string `json:"base-iface"`
	ID        int32  `json:"id"`
}

// DesiredState is nmstate's document for a merged host network.
func DesiredState(host HostNetwork, vlans []int32) nmstateshared.State {
	off := &nmIP{Enabled: false}
	iface := nmInterface{Name: host.Interface, Type: host.Type, State: "up", MTU: host.MTU, IPv4: off, IPv6: off}
	switch host.Type {
	case nmLinuxBridge:
		port := nmPort{Name: host.Uplink}
		if len(vlans) > 0 {
			// A trunk port makes nmstate turn on VLAN filtering on the bridge;
			// the bridge CNI then tags each VM port with its own VLAN.
			port.VLAN = &nmPortVLAN{Mode: "trunk"}
			for _, id := range vlans {
				port.VLAN.TrunkTags = append(port.VLAN.TrunkTags, nmTrunkTag{ID: id})
			}
		}
		iface.Bridge = &nmBridge{Options: &nmBridgeOptions{}, Port: []nmPort{port}}
	case nmOVSBridge:
		iface.IPv4, iface.IPv6 = nil, nil // an OVS bridge has no IP stack of its own in nmstate
		iface.Bridge = &nmBridge{Port: []nmPort{{Name: host.Uplink}}}
	case nmVLAN:
		iface.VLAN = &nmVLANCfg{BaseIface: host.Uplink, ID: host.VLAN}
	}
	return mustState(nmState{Interfaces: []nmInterface{iface}})
}

// AbsentState removes the host interface: applied before the policy is
// deleted, since deleting a policy does not revert the host.
func AbsentState(host HostNetwork) nmstateshared.State {
	return mustState(nmState{Interfaces: []nmInterface{{Name: host.Interface, Type: host.Type, State: "absent"}}})
}

func mustState(state nmState) nmstateshared.State {
	raw, _ := json.Marshal(state) // plain structs of strings, ints and bools always marshal
	return nmstateshared.NewState(string(raw))
}

// NNCP is the shared policy for a merged host network.
func NNCP(host HostNetwork, state nmstateshared.State) *nmstatev1.NodeNetworkConfigurationPolicy {
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   NNCPName(host.Interface),
			Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelHostNetwork: "true"},
		},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{NodeSelector: host.NodeSelector, DesiredState: state},
	}
}
