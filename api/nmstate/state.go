// Package nmstate is the part of kubernetes-nmstate's desired-state schema
// vmoperator writes (the controller builds policies for managed
// HostNetworks), reads back (the agent verifies them in the kernel) and
// applies (the test stand-in for nmstate's handler): interfaces of type
// linux-bridge, ovs-bridge, vlan, bond and ethernet. Typed, so no string
// template can go wrong; fields outside it are ignored on reading, so newer
// nmstate documents still parse.
package nmstate

import (
	"encoding/json"
	"fmt"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	"sigs.k8s.io/yaml"
)

// Interface types.
const (
	TypeLinuxBridge = "linux-bridge"
	TypeOVSBridge   = "ovs-bridge"
	TypeVLAN        = "vlan"
	TypeBond        = "bond"
	TypeEthernet    = "ethernet"
)

// Interface states.
const (
	StateUp     = "up"
	StateDown   = "down"
	StateAbsent = "absent"
)

// State is a desired-state document.
type State struct {
	Interfaces []Interface `json:"interfaces"`
}

// Interface is one interface of a desired state.
type Interface struct {
	Name            string           `json:"name"`
	Type            string           `json:"type"`
	State           string           `json:"state"`
	MTU             int32            `json:"mtu,omitempty"`
	IPv4            *IP              `json:"ipv4,omitempty"`
	IPv6            *IP              `json:"ipv6,omitempty"`
	Bridge          *Bridge          `json:"bridge,omitempty"`
	VLAN            *VLAN            `json:"vlan,omitempty"`
	LinkAggregation *LinkAggregation `json:"link-aggregation,omitempty"`
	Ethernet        *Ethernet        `json:"ethernet,omitempty"`
}

// IP switches an interface's IP stack.
type IP struct {
	Enabled bool `json:"enabled"`
}

// Bridge is a Linux or OVS bridge's settings.
type Bridge struct {
	Options *BridgeOptions `json:"options,omitempty"`
	Port    []Port         `json:"port"`
}

// BridgeOptions are a Linux bridge's options.
type BridgeOptions struct {
	STP STP `json:"stp"`
}

// STP switches the spanning tree.
type STP struct {
	Enabled bool `json:"enabled"`
}

// Port is one port of a bridge. A trunk port makes nmstate turn VLAN
// filtering on and allow its trunk tags, and NetworkManager also keeps the
// bridge's default PVID (VLAN 1, PVID and egress-untagged) on every port
// (src/core/devices/nm-device-bridge.c), which nmstate leaves out when it
// reports the port (rust/src/lib/nispor/linux_bridge_port_vlan.rs). So the
// kernel shows the trunk tags plus the default PVID, and the agent judges
// a trunk as nmstate reports it (agent/verify, checkTrunk). A port without
// VLAN settings is not left alone either: kubernetes-nmstate writes it into
// the enactment as trunk 2-4094 (pkg/bridge/bridge.go, ApplyDefaultVlanFiltering),
// so filtering goes on for every linux-bridge it brings up.
type Port struct {
	Name string    `json:"name"`
	VLAN *PortVLAN `json:"vlan,omitempty"`
}

// PortVLAN is a bridge port's VLAN settings.
type PortVLAN struct {
	Mode      string     `json:"mode"`
	TrunkTags []TrunkTag `json:"trunk-tags"`
}

// TrunkTag is a VLAN id or range a trunk port allows.
type TrunkTag struct {
	ID      int32    `json:"id,omitempty"`
	IDRange *IDRange `json:"id-range,omitempty"`
}

// IDRange is an inclusive range of VLAN ids.
type IDRange struct {
	Min int32 `json:"min"`
	Max int32 `json:"max"`
}

// VLAN is an 802.1Q sub-interface's settings.
type VLAN struct {
	BaseIface string `json:"base-iface"`
	ID        int32  `json:"id"`
}

// LinkAggregation is a bond's settings.
type LinkAggregation struct {
	Mode string   `json:"mode"`
	Port []string `json:"port"`
}

// Ethernet is a NIC's settings.
type Ethernet struct {
	SRIOV *SRIOV `json:"sr-iov,omitempty"`
}

// SRIOV is an SR-IOV physical function's settings.
type SRIOV struct {
	// TotalVFs is a pointer so that 0 (no VFs) is written, not left out.
	TotalVFs *int32 `json:"total-vfs,omitempty"`
}

// Parse reads a desired state, as JSON or YAML (nmstate's State reads back
// from the apiserver as YAML).
func Parse(raw []byte) (State, error) {
	var s State
	if len(raw) == 0 {
		return s, nil
	}
	if err := yaml.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("desiredState does not parse: %w", err)
	}
	return s, nil
}

// Policy is the document as a NodeNetworkConfigurationPolicy carries it.
func (s State) Policy() nmstateshared.State {
	raw, _ := json.Marshal(s) // plain structs of strings, ints and bools always marshal
	return nmstateshared.NewState(string(raw))
}

// Ports are a bridge interface's ports (none for other types).
func (i Interface) Ports() []Port {
	if i.Bridge == nil {
		return nil
	}
	return i.Bridge.Port
}

// Filtering says whether the policy asks for VLAN filtering on the bridge:
// when some port has VLAN settings. (kubernetes-nmstate turns it on for
// every bridge that is up, by its port default; see Port.)
func (i Interface) Filtering() bool {
	for _, p := range i.Ports() {
		if p.VLAN != nil {
			return true
		}
	}
	return false
}

// Trunked lists the VLAN ids a trunk port allows, or nil for a port
// without VLAN settings.
func (p Port) Trunked() []int {
	if p.VLAN == nil {
		return nil
	}
	var ids []int
	for _, tag := range p.VLAN.TrunkTags {
		if tag.IDRange != nil {
			for id := tag.IDRange.Min; id <= tag.IDRange.Max; id++ {
				ids = append(ids, int(id))
			}
			continue
		}
		ids = append(ids, int(tag.ID))
	}
	return ids
}
