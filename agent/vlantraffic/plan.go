package vlantraffic

import (
	"cmp"
	"slices"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
)

// countedRoles are the roles whose links carry the node's tagged traffic:
// the wire side, in the order they are kept when the ports exceed the
// limit. Bridges and VLAN links see it untagged, and per-VM ports have no
// role at all, so the number of counted ports stays small.
var countedRoles = []string{capability.RolePF, capability.RoleBond, capability.RoleUplink, capability.RoleBridgePort}

// PortCost is what one counted port costs in memory: its counters map
// (4,096 × 48 bytes) and allowed map (4,096 × 8 bytes), allocated by the
// kernel and charged to the agent's memory cgroup, and mapped into the
// agent, which reads them at every scrape.
const PortCost = MaxVLANs * (valueSize + allowedValueSize)

// Plan picks the ports to count on from the node's relevant links, with the
// VLANs each carries, and the VLANs in use on the node (every bridge port
// VLAN and VLAN link ID), which are the ones exported by number. SR-IOV VFs
// in the host namespace are left out: each is an uplink to netlink, a node
// can have hundreds, and their traffic is counted on their PF. Ports come
// PFs first, then bonds, uplinks and bridge ports, each by name, so that
// Limit keeps the same ones every round.
func Plan(snap probe.Snapshot, relevant []capability.RoleLink) (ports []Port, inUse []int) {
	var counted []capability.RoleLink
	for _, l := range relevant {
		if slices.Contains(countedRoles, l.Role) && !(l.VF && l.Role == capability.RoleUplink) {
			counted = append(counted, l)
		}
	}
	slices.SortStableFunc(counted, func(a, b capability.RoleLink) int {
		if c := cmp.Compare(slices.Index(countedRoles, a.Role), slices.Index(countedRoles, b.Role)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, l := range counted {
		ports = append(ports, portOf(l.Link, snap))
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

// Limit keeps the first limit ports of a plan (limit > 0) and says how many it
// cut: the agent's memory grows by PortCost per counted port, and its
// limit must not depend on how many links a node has.
func Limit(ports []Port, limit int) (kept []Port, cut int) {
	if limit <= 0 || len(ports) <= limit {
		return ports, 0
	}
	return ports[:limit], len(ports) - limit
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
