package probe

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LinkSource dumps the links of one network namespace from the kernel.
type LinkSource interface {
	// LinkMessages returns the RTM_NEWLINK messages of one link dump,
	// undecoded: one per link, so that a link that cannot be decoded costs
	// only itself (netlink's LinkList fails the whole dump on it).
	LinkMessages() ([][]byte, error)
	// BridgeVlanList returns the bridge VLAN entries of every port, by ifindex.
	BridgeVlanList() (map[int32][]*nl.BridgeVlanInfo, error)
}

// Netlink is the LinkSource of a real namespace: NETLINK_ROUTE sockets
// opened inside it. Close it when done.
type Netlink struct {
	handle *netlink.Handle  // bridge VLAN dumps, decoded by the library
	route  *nl.SocketHandle // raw link dumps
}

// NewNetlink opens the sockets in ns (netns.None() for the caller's own namespace).
func NewNetlink(ns netns.NsHandle) (*Netlink, error) {
	handle, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE) // links only: no xfrm/netfilter sockets
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	socket, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		handle.Close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return &Netlink{handle: handle, route: &nl.SocketHandle{Socket: socket}}, nil
}

// Close closes the sockets.
func (n *Netlink) Close() {
	n.handle.Close()
	n.route.Close()
}

// LinkMessages asks for the same dump as netlink's LinkList, VF details included.
func (n *Netlink) LinkMessages() ([][]byte, error) {
	req := &nl.NetlinkRequest{
		NlMsghdr: unix.NlMsghdr{
			Len:   uint32(unix.SizeofNlMsghdr),
			Type:  unix.RTM_GETLINK,
			Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP,
		},
		Sockets: map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: n.route},
	}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(nl.RTEXT_FILTER_VF)))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return nil, fmt.Errorf("netlink link dump: %w", err)
	}
	return msgs, nil
}

// BridgeVlanList is netlink's bridge VLAN dump.
func (n *Netlink) BridgeVlanList() (map[int32][]*nl.BridgeVlanInfo, error) {
	vlans, err := n.handle.BridgeVlanList()
	if err != nil {
		return nil, fmt.Errorf("netlink bridge VLAN dump: %w", err)
	}
	return vlans, nil
}

// dumpAttempts bounds the repeats of a dump the kernel marked interrupted
// (links changed while it ran, so it may miss or repeat some): one link
// flapping may interrupt one dump, but not three in a row.
const dumpAttempts = 3

// consistentDump repeats dump while the kernel says it was interrupted.
func consistentDump[T any](dump func() (T, error)) (T, error) {
	var result T
	var err error
	for range dumpAttempts {
		result, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return result, err
		}
	}
	var zero T
	return zero, fmt.Errorf("interrupted %d times in a row: %w", dumpAttempts, err)
}
