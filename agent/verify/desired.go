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
	Bridge *struct {
		Port []struct {
			Name string `json:"name"`
		} `json:"port"`
	} `json:"bridge"`
	VLAN *struct {
		BaseIface string `json:"base-iface"`
		ID        int    `json:"id"`
	} `json:"vlan"`
	LinkAggregation *struct {
		Mode string   `json:"mode"`
		Port []string `json:"port"`
	} `json:"link-aggregation"`
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

func (i desiredInterface) ports() []string {
	if i.Bridge == nil {
		return nil
	}
	names := make([]string, 0, len(i.Bridge.Port))
	for _, p := range i.Bridge.Port {
		names = append(names, p.Name)
	}
	return names
}
