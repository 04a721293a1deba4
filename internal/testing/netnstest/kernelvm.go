package netnstest

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Links the host kernel here lacks; tests using them run in the kernel VM
// (make test-kernel).

// Dummy adds a dummy link and sets it up.
func (n *Namespace) Dummy(t testing.TB, name string) {
	t.Helper()
	n.must(t, "add dummy "+name, n.Handle.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}))
	n.SetUp(t, name)
}

// VLAN adds an 802.1Q link on parent and sets it up.
func (n *Namespace) VLAN(t testing.TB, name, parent string, id int) {
	t.Helper()
	p := n.Link(t, parent)
	vlan := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index}, VlanId: id}
	n.must(t, "add VLAN "+name, n.Handle.LinkAdd(vlan))
	n.SetUp(t, name)
}

// FilteringBridge adds a bridge with vlan_filtering on and sets it up.
func (n *Namespace) FilteringBridge(t testing.TB, name string) {
	t.Helper()
	on := true
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, VlanFiltering: &on}
	n.must(t, "add filtering bridge "+name, n.Handle.LinkAdd(br))
	n.SetUp(t, name)
}

// AllowVLANs lets the given VLANs through a bridge port, tagged.
func (n *Namespace) AllowVLANs(t testing.TB, port string, ids ...int) {
	t.Helper()
	l := n.Link(t, port)
	for _, id := range ids {
		n.must(t, fmt.Sprintf("allow VLAN %d on %s", id, port), n.Handle.BridgeVlanAdd(l, uint16(id), false, false, false, true))
	}
}

// ActiveBackupBond adds an active-backup bond with the given members (they
// must be down to be enslaved) and sets everything up.
func (n *Namespace) ActiveBackupBond(t testing.TB, name string, members ...string) {
	t.Helper()
	bond := netlink.NewLinkBond(netlink.LinkAttrs{Name: name})
	bond.Mode = netlink.BOND_MODE_ACTIVE_BACKUP
	bond.Miimon = 100
	n.must(t, "add bond "+name, n.Handle.LinkAdd(bond))
	for _, m := range members {
		n.SetDown(t, m)
		n.Enslave(t, m, name)
	}
	n.SetUp(t, name)
	for _, m := range members {
		n.SetUp(t, m)
	}
}

// OVS generic netlink constants from linux/openvswitch.h.
const (
	ovsDatapathFamily  = "ovs_datapath"
	ovsDatapathVersion = 2
	ovsDPCmdNew        = 1
	ovsDPAttrName      = 1
	ovsDPAttrUpcallPID = 2
)

// ovsHeader is struct ovs_header: the datapath ifindex (0 for a new one).
type ovsHeader struct{ dpIfindex int32 }

func (h ovsHeader) Len() int { return 4 }
func (h ovsHeader) Serialize() []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(h.dpIfindex))
	return b
}

// OVSDatapath creates an Open vSwitch kernel datapath, which shows up as a
// link of kind "openvswitch" with the datapath's name, as ovs-vswitchd's
// bridges do. vishvananda/netlink has no call for this, so the generic
// netlink message is built here.
func (n *Namespace) OVSDatapath(t testing.TB, name string) {
	t.Helper()
	err := n.Do(func() error {
		family, err := netlink.GenlFamilyGet(ovsDatapathFamily)
		if err != nil {
			return fmt.Errorf("generic netlink family %s (is openvswitch loaded?): %w", ovsDatapathFamily, err)
		}
		req := nl.NewNetlinkRequest(int(family.ID), unix.NLM_F_ACK)
		req.AddData(&nl.Genlmsg{Command: ovsDPCmdNew, Version: ovsDatapathVersion})
		req.AddData(ovsHeader{})
		req.AddData(nl.NewRtAttr(ovsDPAttrName, nl.ZeroTerminated(name)))
		req.AddData(nl.NewRtAttr(ovsDPAttrUpcallPID, nl.Uint32Attr(0)))
		_, err = req.Execute(unix.NETLINK_GENERIC, 0)
		if err != nil {
			return fmt.Errorf("OVS datapath %s: %w", name, err)
		}
		return nil
	})
	n.must(t, "create OVS datapath "+name, err)
	n.SetUp(t, name)
}
