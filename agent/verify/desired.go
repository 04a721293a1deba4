package verify

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// nmstate interface types the verifier understands.
const (
	typeLinuxBridge = "linux-bridge"
	typeVLAN        = "vlan"
	typeOVSBridge   = "ovs-bridge"
	typeBond        = "bond"
	typeEthernet    = "ethernet"
	stateAbsent     = "absent"
	stateDown       = "down"
)

// desiredState is the part of nmstate's schema the verifier reads; every
// other field is ignored, so newer nmstate schemas still parse.
type desiredState struct {
	Interfaces []desiredInterface `json:"interfaces"`
}

type desiredInterface struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	State  string `json:"state"`
	MTU    int    `json:"mtu"`
	Bridge *struct {
		Port []desiredPort `json:"port"`
	} `json:"bridge"`
	VLAN *struct {
		BaseIface string `json:"base-iface"`
		ID        int    `json:"id"`
	} `json:"vlan"`
	LinkAggregation *struct {
		Mode string   `json:"mode"`
		Port []string `json:"port"`
	} `json:"link-aggregation"`
	Ethernet *struct {
		SRIOV *struct {
			TotalVFs *int `json:"total-vfs"`
		} `json:"sr-iov"`
	} `json:"ethernet"`
}

// desiredPort is one port of a desired bridge; a trunk port makes nmstate
// turn VLAN filtering on and allow exactly its trunk tags.
type desiredPort struct {
	Name string `json:"name"`
	VLAN *struct {
		Mode      string `json:"mode"`
		TrunkTags []struct {
			ID      int `json:"id"`
			IDRange *struct {
				Min int `json:"min"`
				Max int `json:"max"`
			} `json:"id-range"`
		} `json:"trunk-tags"`
	} `json:"vlan"`
}

// trunked lists the VLAN ids a trunk port must allow, or nil for a port
// without VLAN settings.
func (p desiredPort) trunked() []int {
	if p.VLAN == nil {
		return nil
	}
	var ids []int
	for _, tag := range p.VLAN.TrunkTags {
		if tag.IDRange != nil {
			for id := tag.IDRange.Min; id <= tag.IDRange.Max; id++ {
				ids = append(ids, id)
			}
			continue
		}
		ids = append(ids, tag.ID)
	}
	return ids
}

// parseDesired reads a policy's desiredState (JSON or YAML).
func parseDesired(raw []byte) (desiredState, error) {
	var s desiredState
	if len(raw) == 0 {
		return s, nil
	}
	if err := yaml.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("desiredState does not parse: %w", err)
	}
	return s, nil
}

func (i desiredInterface) ports() []desiredPort {
	if i.Bridge == nil {
		return nil
	}
	return i.Bridge.Port
}

// filtering says whether nmstate turns VLAN filtering on for the bridge.
func (i desiredInterface) filtering() bool {
	for _, p := range i.ports() {
		if p.VLAN != nil {
			return true
		}
	}
	return false
}
