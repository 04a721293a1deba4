// Package probetest builds probe snapshots of whole nodes for tests that
// need more links than a test namespace holds comfortably, such as the
// node with a bridge for every VLAN that bounds a NodeCapability's size.
package probetest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jianfenliu/vmoperator/agent/probe"
)

// The VLAN ids a trunk can carry besides the default VLAN 1: 4095 is
// reserved by 802.1Q, but Linux accepts it on a VLAN interface and a
// bridge, so a node using every id it can has 4,094 of them.
const (
	FirstVLAN = 2
	LastVLAN  = 4095
	AllVLANs  = LastVLAN - FirstVLAN + 1
)

func up(name, kind string) probe.Link {
	return probe.Link{Name: name, Kind: kind, AdminUp: true, Carrier: true, MTU: 1500}
}

// VLANNode is a node laid out for VLAN-per-bridge networks at their
// largest: a management NIC eth0; for each of parents (a NIC each; eth1
// when none is given) and every VLAN id from FirstVLAN to LastVLAN, a VLAN
// interface <parent>.<id> as the only port of its own bridge
// br-<parent>-<id>; and a VLAN-filtering bridge br-trunk whose uplink
// eth9 carries all the ids tagged. The links come sorted by name, as the
// probe lists them.
func VLANNode(parents ...string) probe.Snapshot {
	if len(parents) == 0 {
		parents = []string{"eth1"}
	}
	nic := func(name string) probe.Link {
		l := up(name, probe.KindDevice)
		l.SpeedMbps = 25000
		return l
	}
	links := []probe.Link{
		{Name: "lo", Kind: probe.KindDevice, Loopback: true, AdminUp: true, Carrier: true, MTU: 65536},
		nic("eth0"),
	}
	trunk, uplink := up("br-trunk", probe.KindBridge), nic("eth9")
	trunk.VLANFiltering, uplink.Master = true, trunk.Name
	for id := FirstVLAN; id <= LastVLAN; id++ {
		uplink.PortVLANs = append(uplink.PortVLANs, id)
	}
	links = append(links, trunk, uplink)
	for _, parent := range parents {
		links = append(links, nic(parent))
		for id := FirstVLAN; id <= LastVLAN; id++ {
			bridge := up(fmt.Sprintf("br-%s-%d", parent, id), probe.KindBridge)
			vlan := up(fmt.Sprintf("%s.%d", parent, id), probe.KindVLAN)
			vlan.Parent, vlan.VLANID, vlan.Master = parent, id, bridge.Name
			links = append(links, bridge, vlan)
		}
	}
	slices.SortFunc(links, func(a, b probe.Link) int { return strings.Compare(a.Name, b.Name) })
	return probe.Snapshot{Links: links}
}
