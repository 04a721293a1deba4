package nmstatesim

import (
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/api/nmstate"
)

// Fidelity chooses which of the real stack's behaviours the stand-in
// plays. Each field is a switch a test can turn on or off, and names the
// upstream file it follows; docs/fidelity.md (section nmstate) lists them.
type Fidelity struct {
	// DefaultPVID keeps the bridge's default PVID (VLAN 1, PVID and
	// egress-untagged) on every port of a filtering bridge, beside the
	// trunk tags, as NetworkManager does
	// (src/core/devices/nm-device-bridge.c: bridge_set_vlan_options sets
	// the bridge's vlan-default-pvid before the port VLANs, and
	// merge_bridge_vlan_default_pvid adds it back on a reapply). Off, a
	// trunk port carries exactly its trunk tags (the stand-in before
	// issue 22, which hid that the agent never verified NetworkManager's
	// trunks).
	DefaultPVID bool
	// PortDefault renders each port of a linux-bridge that is up and has
	// no vlan: as trunk 2-4094 into the enactment's desired state, and
	// applies that, as kubernetes-nmstate's handler does before it calls
	// nmstate (pkg/bridge/bridge.go, ApplyDefaultVlanFiltering, called
	// from controllers/handler/nodenetworkconfigurationpolicy_controller.go).
	// Every bridge then filters VLANs, which the host kernel of this
	// machine cannot: only kernel-VM nodes can play it.
	PortDefault bool
	// Checkpoint undoes a failed apply, as nmstate does with
	// NetworkManager's checkpoint (rust/src/lib/query_apply/net_state.rs,
	// with_nm_checkpoint: rollback on any error): the links it created go,
	// and MTUs, masters, VLAN filtering, port VLANs, link states and VF
	// counts it changed return to what they were. Off, a failed apply
	// leaves the kernel half-configured.
	Checkpoint bool
}

// Upstream turns every switch on.
func Upstream() Fidelity {
	return Fidelity{DefaultPVID: true, PortDefault: true, Checkpoint: true}
}

// DefaultFidelity is what Setup plays: upstream, except the port default,
// which needs VLAN filtering on every bridge and so fails on the host
// kernels of make dev's netns nodes (the node VM turns it on).
func DefaultFidelity() Fidelity {
	return Fidelity{DefaultPVID: true, Checkpoint: true}
}

// Port default of kubernetes-nmstate (pkg/bridge/bridge.go).
const (
	portDefaultMin = 2
	portDefaultMax = 4094
)

// renderPortDefault writes trunk 2-4094 into every port without vlan: of
// each linux-bridge whose state is up, keeping every other field of the
// document (kubernetes-nmstate edits the raw document, not a model).
func renderPortDefault(raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("desiredState does not parse: %w", err)
	}
	interfaces, _ := doc["interfaces"].([]any)
	for _, item := range interfaces {
		iface, _ := item.(map[string]any)
		if iface["type"] != nmstate.TypeLinuxBridge || iface["state"] != nmstate.StateUp {
			continue
		}
		bridge, _ := iface["bridge"].(map[string]any)
		ports, _ := bridge["port"].([]any)
		for _, p := range ports {
			port, _ := p.(map[string]any)
			if _, has := port["vlan"]; has || port == nil {
				continue
			}
			port["vlan"] = map[string]any{"mode": "trunk", "trunk-tags": []any{
				map[string]any{"id-range": map[string]any{"min": portDefaultMin, "max": portDefaultMax}}}}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("write the rendered desiredState: %w", err)
	}
	rendered, err := yaml.JSONToYAML(out) // kubernetes-nmstate hands nmstate YAML
	if err != nil {
		return nil, fmt.Errorf("write the rendered desiredState as YAML: %w", err)
	}
	return rendered, nil
}
