package capability

import (
	"slices"

	"github.com/jianfenliu/vmoperator/agent/probe"
)

// Roles of links that get metrics. The set is small and fixed, so the role
// label is bounded, and links only VMs own (veths, taps) never get one.
const (
	RoleBridge     = "bridge"
	RoleBridgePort = "bridge-port"
	RoleVLAN       = "vlan"
	RoleBond       = "bond"
	RoleUplink     = "uplink"
	RolePF         = "pf"
)

// perWorkloadKinds are link kinds created per pod or per VM; as bridge ports
// they would give every VM its own series.
var perWorkloadKinds = []string{probe.KindVeth, probe.KindTuntap, "macvtap", probe.KindMacvlan}

// RoleLink is a link with the one role it is reported under.
type RoleLink struct {
	probe.Link
	Role string
}

// RelevantLinks picks the node-level links worth watching and gives each one
// role, the first that fits in the order PF, bond, bridge, VLAN, uplink,
// bridge port.
func RelevantLinks(snap probe.Snapshot, extraUplinks, pfNames []string) []RoleLink {
	var out []RoleLink
	for _, l := range snap.Links {
		if role := roleOf(l, extraUplinks, pfNames); role != "" {
			out = append(out, RoleLink{Link: l, Role: role})
		}
	}
	return out
}

func roleOf(l probe.Link, extraUplinks, pfNames []string) string {
	switch {
	case slices.Contains(pfNames, l.Name):
		return RolePF
	case l.Kind == probe.KindBond:
		return RoleBond
	case l.Kind == probe.KindBridge:
		return RoleBridge
	case l.Kind == probe.KindVLAN:
		return RoleVLAN
	case IsUplink(l, extraUplinks):
		return RoleUplink
	case l.Master != "" && !slices.Contains(perWorkloadKinds, l.Kind):
		return RoleBridgePort
	}
	return ""
}
