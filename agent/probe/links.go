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
	// KindTuntap is a tun or tap device: on a host bridge, a VM's NIC.
	KindTuntap = "tuntap"
)

// LinkStats are the kernel's counters for one link.
type LinkStats struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
	// CarrierChanges is the kernel's own count of carrier transitions
	// (IFLA_CARRIER_CHANGES): flaps between two probes are counted too.
	CarrierChanges uint64
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
	// PeerElsewhere is set when the link's other end (a veth's peer, a
	// VLAN's or macvlan's lower link) is in another network namespace: the
	// kernel then names that namespace in IFLA_LINK_NETNSID. A host-side
	// veth of a pod or VM is one.
	PeerElsewhere bool
	VLANID        int
	// VLANFiltering is set on bridges.
	VLANFiltering bool
	// DefaultPVID is a bridge's default PVID (IFLA_BR_VLAN_DEFAULT_PVID):
	// the VLAN the kernel gives each new port, PVID and egress-untagged,
	// once filtering is on. 0 means the bridge gives none. A kernel that
	// does not report it is read as 1, its default, as nmstate reads it
	// (rust/src/lib/nispor/linux_bridge_port_vlan.rs).
	DefaultPVID int
	// PortVLANs are the VLANs the bridge VLAN API lists for this link; PVID
	// its untagged VLAN. ProbeLinks leaves them empty: Snapshot.WithVLANs
	// fills them from ProbeBridgeVLANs.
	PortVLANs []int
	PVID      int
	// VF is set on an SR-IOV virtual function's netdev (its PCI device has
	// a physfn link in sysfs); false when no sysfs root is given.
	VF bool
	// BondMode and BondActive are set on bonds (BondActive names the active member).
	BondMode   string
	BondActive string
	Stats      LinkStats
}

// Skipped is one entry a probe left out of an otherwise good result, and why.
type Skipped struct {
	Name   string
	Reason string
}

// Snapshot is every link of one network namespace at one moment.
type Snapshot struct {
	Links []Link
	// Skipped are links the kernel listed but the probe could not decode.
	Skipped []Skipped
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

// PortVLANs are the VLANs the bridge VLAN API lists for one port.
type PortVLANs struct {
	IDs  []int
	PVID int
}

// BridgeVLANs are the VLANs of every bridge port, by port name: names, not
// ifindexes, so that the VLANs of an earlier dump can be laid over the
// links of a later one.
type BridgeVLANs map[string]PortVLANs

// WithVLANs returns a copy of s whose links carry the VLANs in vlans; links
// vlans does not list carry none.
func (s Snapshot) WithVLANs(vlans BridgeVLANs) Snapshot {
	out := Snapshot{Links: slices.Clone(s.Links), Skipped: s.Skipped}
	for i := range out.Links {
		v := vlans[out.Links[i].Name]
		out.Links[i].PortVLANs, out.Links[i].PVID = v.IDs, v.PVID
	}
	return out
}

// LinkProber lists the links of one network namespace, then the VLANs of
// their bridge ports: two dumps that can fail apart.
type LinkProber interface {
	ProbeLinks() (Snapshot, error)
	ProbeBridgeVLANs(Snapshot) (BridgeVLANs, error)
}

// Links probes one network namespace through a LinkSource.
type Links struct {
	source LinkSource
	// sysfsRoot, when set, is read for link speed; netlink does not carry it.
	// It must show the same namespace as source, so tests leave it empty.
	sysfsRoot string
}

// NewLinks builds a link probe on source. sysfsRoot may be empty (no speeds).
func NewLinks(source LinkSource, sysfsRoot string) *Links {
	return &Links{source: source, sysfsRoot: sysfsRoot}
}

// ProbeLinks dumps the links once. It fails when the dump does; a link whose
// message cannot be decoded is left out and listed in Skipped.
func (p *Links) ProbeLinks() (Snapshot, error) {
	msgs, err := consistentDump(p.source.LinkMessages)
	if err != nil {
		return Snapshot{}, fmt.Errorf("listing links: %w", err)
	}
	var snap Snapshot
	names := make(map[int]string, len(msgs))
	type decodedLink struct {
		link           netlink.Link
		carrierChanges uint64
	}
	decoded := make([]decodedLink, 0, len(msgs))
	for _, m := range msgs {
		index, name := linkIdentity(m)
		if name != "" {
			names[index] = name // a skipped bridge still names its ports' master
		}
		link, err := decodeLink(m)
		if err != nil {
			snap.Skipped = append(snap.Skipped, Skipped{Name: displayName(index, name), Reason: err.Error()})
			continue
		}
		decoded = append(decoded, decodedLink{link: link, carrierChanges: carrierChanges(m)})
	}
	snap.Links = make([]Link, 0, len(decoded))
	for _, d := range decoded {
		l := p.convert(d.link, names)
		l.Stats.CarrierChanges = d.carrierChanges
		snap.Links = append(snap.Links, l)
	}
	slices.SortFunc(snap.Links, func(a, b Link) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(snap.Skipped, func(a, b Skipped) int { return strings.Compare(a.Name, b.Name) })
	return snap, nil
}

// ProbeBridgeVLANs dumps the bridge VLAN table once and names its ports
// after the links of snap. Kernels built without bridge VLAN filtering
// still answer the dump, so an error here is a real one.
func (p *Links) ProbeBridgeVLANs(snap Snapshot) (BridgeVLANs, error) {
	byIndex, err := consistentDump(p.source.BridgeVlanList)
	if err != nil {
		return nil, fmt.Errorf("listing bridge VLANs: %w", err)
	}
	vlans := make(BridgeVLANs)
	for _, l := range snap.Links {
		if infos := byIndex[int32(l.Index)]; len(infos) > 0 {
			vlans[l.Name] = portVLANs(infos)
		}
	}
	return vlans, nil
}

// decodeLink decodes one RTM_NEWLINK message. netlink's decoder slices
// attribute values without checking their length, so a malformed message
// can panic; recovering here makes that cost one link instead of the agent.
func decodeLink(m []byte) (link netlink.Link, err error) {
	if len(m) < unix.SizeofIfInfomsg {
		return nil, fmt.Errorf("message of %d bytes is shorter than its header", len(m))
	}
	defer func() {
		if r := recover(); r != nil {
			link, err = nil, fmt.Errorf("decoding its message panicked: %v", r)
		}
	}()
	link, err = netlink.LinkDeserialize(nil, m)
	if err != nil {
		return nil, fmt.Errorf("decoding its message: %w", err)
	}
	return link, nil
}

// linkIdentity reads the ifindex and IFLA_IFNAME of a message the decoder
// may have refused; the name is empty when the attributes do not parse.
func linkIdentity(m []byte) (int, string) {
	if len(m) < unix.SizeofIfInfomsg {
		return 0, ""
	}
	index := int(nl.DeserializeIfInfomsg(m).Index)
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return index, ""
	}
	for _, attr := range attrs {
		if attr.Attr.Type == unix.IFLA_IFNAME {
			return index, strings.TrimRight(string(attr.Value), "\x00")
		}
	}
	return index, ""
}

// carrierChanges reads IFLA_CARRIER_CHANGES, which netlink's decoder drops;
// 0 where the kernel does not send it (before 3.15) or it does not parse.
func carrierChanges(m []byte) uint64 {
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return 0
	}
	for _, attr := range attrs {
		if attr.Attr.Type == unix.IFLA_CARRIER_CHANGES && len(attr.Value) == 4 {
			return uint64(nl.NativeEndian().Uint32(attr.Value))
		}
	}
	return 0
}

func displayName(index int, name string) string {
	switch {
	case name != "":
		return name
	case index != 0:
		return fmt.Sprintf("ifindex %d", index)
	}
	return "a truncated link message"
}

func (p *Links) convert(l netlink.Link, names map[int]string) Link {
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
		// NetNsID is -1 without IFLA_LINK_NETNSID; ids start at 0.
		PeerElsewhere: attrs.NetNsID >= 0,
		Stats:         convertStats(attrs.Statistics),
	}
	// A lower link in another namespace has an ifindex of that namespace,
	// which names nothing here.
	parent := ""
	if !out.PeerElsewhere {
		parent = names[attrs.ParentIndex]
	}
	switch link := l.(type) {
	case *netlink.Bridge:
		out.VLANFiltering = link.VlanFiltering != nil && *link.VlanFiltering
		out.DefaultPVID = 1
		if link.VlanDefaultPVID != nil {
			out.DefaultPVID = int(*link.VlanDefaultPVID)
		}
	case *netlink.Vlan:
		out.VLANID = link.VlanId
		out.Parent = parent
	case *netlink.Macvlan:
		// A veth's IFLA_LINK is its peer, so parents are read only for stacked kinds.
		out.Parent = parent
	case *netlink.Bond:
		out.BondMode = link.Mode.String()
		out.BondActive = names[link.ActiveSlave]
	}
	out.SpeedMbps = p.speed(attrs.Name)
	out.VF = out.Kind == KindDevice && p.isVF(attrs.Name)
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

// portVLANs turns the kernel's entries for one port into ids and the PVID.
// The dump we request is not compressed into ranges, so each entry is one VLAN.
func portVLANs(infos []*nl.BridgeVlanInfo) PortVLANs {
	ids := make([]int, 0, len(infos))
	pvid := 0
	for _, info := range infos {
		ids = append(ids, int(info.Vid))
		if info.PortVID() {
			pvid = int(info.Vid)
		}
	}
	slices.Sort(ids)
	return PortVLANs{IDs: slices.Compact(ids), PVID: pvid}
}

// isVF: a VF's PCI function links to its PF as physfn.
func (p *Links) isVF(name string) bool {
	if p.sysfsRoot == "" {
		return false
	}
	_, err := os.Lstat(filepath.Join(p.sysfsRoot, "class", "net", name, "device", "physfn"))
	return err == nil
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
