package vlantraffic

import (
	"slices"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
)

// countedRoles are the roles whose links carry the node's tagged traffic:
// the wire side. Bridges and VLAN links see it untagged, and per-VM ports
// have no role at all, so the number of counted ports stays small.
var countedRoles = []string{capability.RoleUplink, capability.RoleBridgePort, capability.RoleBond, capability.RolePF}

// Plan picks the ports to count on from the node's relevant links, with the
// VLANs each carries, and the VLANs in use on the node (every bridge port
// VLAN and VLAN link ID), which are the ones exported by number.
func Plan(snap probe.Snapshot, relevant []capability.RoleLink) (ports []Port, inUse []int) {
	for _, l := range relevant {
		if slices.Contains(countedRoles, l.Role) {
			ports = append(ports, portOf(l.Link, snap))
		}
	}
	for _, l := range snap.Links {
		inUse = append(inUse, l.PortVLANs...)
		if l.Kind == probe.KindVLAN && l.VLANID > 0 {
			inUse = append(inUse, l.VLANID)
		}
	}
	slices.Sort(inUse)
	return ports, slices.Compact(inUse)
}

// portOf says which VLANs a link accepts from the wire:
//   - a port of a VLAN-filtering bridge: its bridge VLANs, untagged frames
//     only with a PVID;
//   - a link with no master: the IDs of the VLAN links on it, and untagged;
//   - a port of anything else (a bridge without filtering, OVS, a bond):
//     every VLAN, since the port itself filters none.
func portOf(l probe.Link, snap probe.Snapshot) Port {
	p := Port{Name: l.Name, Index: l.Index}
	if l.Master == "" {
		for _, v := range snap.Links {
			if v.Kind == probe.KindVLAN && v.Parent == l.Name && v.VLANID > 0 {
				p.Allowed = append(p.Allowed, v.VLANID)
			}
		}
		slices.Sort(p.Allowed)
		p.Untagged = true
		return p
	}
	if master := snap.ByName(l.Master); master != nil && master.Kind == probe.KindBridge && master.VLANFiltering {
		p.Allowed = slices.Clone(l.PortVLANs)
		p.Untagged = l.PVID != 0
		return p
	}
	p.AllowAll = true
	return p
}
