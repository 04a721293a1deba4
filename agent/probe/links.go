package probe

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Link kinds as netlink names them (IFLA_INFO_KIND, or "device" for a NIC).
const (
	KindBridge  = "bridge"
	KindVLAN    = "vlan"
	KindBond    = "bond"
	KindOVS     = "openvswitch"
	KindDevice  = "device"
	KindVeth    = "veth"
	KindMacvlan = "macvlan"
)

// LinkStats are the kernel's counters for one link.
type LinkStats struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
}

// Link is what the kernel shows for one interface, flattened so that the
// status builder and the metrics need no netlink types.
type Link struct {
	Name  string
	Index int
	Kind  string
	// Loopback is set on lo, which netlink calls a "device" like a NIC.
	Loopback bool
	AdminUp  bool // IFF_UP
	Carrier  bool // operstate up (or unknown with IFF_RUNNING, as for some virtual links)
	MTU      int
	// SpeedMbps is 0 when unknown (no sysfs root given, or the driver does not say).
	SpeedMbps int
	// Master is the bridge or bond this link is enslaved to, if any.
	Master string
	// Parent is the lower link of a VLAN or macvlan.
	Parent string
	VLANID int
	// VLANFiltering is set on bridges.
	VLANFiltering bool
	// PortVLANs are the VLANs the bridge VLAN API lists for this link; PVID its untagged VLAN.
	PortVLANs []int
	PVID      int
	// BondMode and BondActive are set on bonds (BondActive names the active member).
	BondMode   string
	BondActive string
	Stats      LinkStats
}

// Snapshot is every link of one network namespace at one moment.
type Snapshot struct {
	Links []Link
}

// ByName finds a link, or nil.
func (s Snapshot) ByName(name string) *Link {
	for i := range s.Links {
		if s.Links[i].Name == name {
			return &s.Links[i]
		}
	}
	return nil
}

// LinkProber lists the links of one network namespace.
type LinkProber interface {
	ProbeLinks() (Snapshot, error)
}

// Links probes through a netlink handle bound to one network namespace.
type Links struct {
	handle *netlink.Handle
	// sysfsRoot, when set, is read for link speed; netlink does not carry it.
	// It must show the same namespace as handle, so tests leave it empty.
	sysfsRoot string
}

// NewLinks builds a link probe on handle. sysfsRoot may be empty (no speeds).
func NewLinks(handle *netlink.Handle, sysfsRoot string) *Links {
	return &Links{handle: handle, sysfsRoot: sysfsRoot}
}

// ProbeLinks dumps the links and the bridge VLAN table once each.
func (p *Links) ProbeLinks() (Snapshot, error) {
	nlLinks, err := p.handle.LinkList()
	if err != nil {
		return Snapshot{}, fmt.Errorf("listing links: %w", err)
	}
	names := make(map[int]string, len(nlLinks))
	for _, l := range nlLinks {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	vlans, err := p.handle.BridgeVlanList()
	if err != nil {
		// Kernels built without bridge VLAN filtering still answer the dump;
		// an error here is real, but links without VLANs are still worth reporting.
		vlans = nil
	}
	snap := Snapshot{Links: make([]Link, 0, len(nlLinks))}
	for _, l := range nlLinks {
		snap.Links = append(snap.Links, p.convert(l, names, vlans[int32(l.Attrs().Index)]))
	}
	slices.SortFunc(snap.Links, func(a, b Link) int { return strings.Compare(a.Name, b.Name) })
	return snap, nil
}

func (p *Links) convert(l netlink.Link, names map[int]string, vlans []*nl.BridgeVlanInfo) Link {
	attrs := l.Attrs()
	out := Link{
		Name:     attrs.Name,
		Index:    attrs.Index,
		Kind:     l.Type(),
		AdminUp:  attrs.Flags&net.FlagUp != 0,
		Loopback: attrs.Flags&net.FlagLoopback != 0,
		Carrier:  hasCarrier(attrs),
		MTU:      attrs.MTU,
		Master:   names[attrs.MasterIndex],
		Stats:    convertStats(attrs.Statistics),
	}
	out.PortVLANs, out.PVID = portVLANs(vlans)
	switch link := l.(type) {
	case *netlink.Bridge:
		out.VLANFiltering = link.VlanFiltering != nil && *link.VlanFiltering
	case *netlink.Vlan:
		out.VLANID = link.VlanId
		out.Parent = names[attrs.ParentIndex]
	case *netlink.Macvlan:
		// A veth's IFLA_LINK is its peer, so parents are read only for stacked kinds.
		out.Parent = names[attrs.ParentIndex]
	case *netlink.Bond:
		out.BondMode = link.Mode.String()
		out.BondActive = names[link.ActiveSlave]
	}
	out.SpeedMbps = p.speed(attrs.Name)
	return out
}

func hasCarrier(attrs *netlink.LinkAttrs) bool {
	switch attrs.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		// Loopback and some virtual links never report an operstate.
		return attrs.RawFlags&unix.IFF_RUNNING != 0
	}
	return false
}

func convertStats(s *netlink.LinkStatistics) LinkStats {
	if s == nil {
		return LinkStats{}
	}
	return LinkStats{
		RxBytes: s.RxBytes, TxBytes: s.TxBytes,
		RxPackets: s.RxPackets, TxPackets: s.TxPackets,
		RxErrors: s.RxErrors, TxErrors: s.TxErrors,
		RxDropped: s.RxDropped, TxDropped: s.TxDropped,
	}
}

// portVLANs turns the kernel's per-port VLAN entries into ids and the PVID.
// Ranges arrive as begin/end entries with flags; the kernel expands them in
// the compressed-less dump we request, so each entry is one VLAN.
func portVLANs(infos []*nl.BridgeVlanInfo) ([]int, int) {
	if len(infos) == 0 {
		return nil, 0
	}
	ids := make([]int, 0, len(infos))
	pvid := 0
	for _, info := range infos {
		ids = append(ids, int(info.Vid))
		if info.PortVID() {
			pvid = int(info.Vid)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), pvid
}

func (p *Links) speed(name string) int {
	if p.sysfsRoot == "" {
		return 0
	}
	raw, err := os.ReadFile(filepath.Join(p.sysfsRoot, "class", "net", name, "speed"))
	if err != nil {
		return 0 // down links and virtual links refuse to say
	}
	speed, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || speed < 0 {
		return 0
	}
	return speed
}
