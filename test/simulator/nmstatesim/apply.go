package nmstatesim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/jianfenliu/vmoperator/api/nmstate"
)

// apply makes the node's kernel match a desired state with every upstream
// behaviour on (the kernel tests replay policies through it).
func apply(n Node, raw []byte) error {
	return applyWith(n, Upstream(), raw)
}

// applyWith makes the node's kernel match a desired state, interface by
// interface. With Fidelity.Checkpoint, a failure undoes every change it
// made, last first, as nmstate's checkpoint rollback does.
func applyWith(n Node, f Fidelity, raw []byte) error {
	state, err := nmstate.Parse(raw)
	if err != nil {
		return err
	}
	k := &kernel{n: n, f: f}
	for _, i := range state.Interfaces {
		if err := k.applyInterface(i); err != nil {
			err = fmt.Errorf("interface %s (%s): %w", i.Name, i.Type, err)
			if !f.Checkpoint {
				return err
			}
			if undoErr := k.rollback(); undoErr != nil {
				return fmt.Errorf("%w; rolling back to the checkpoint failed too: %w", err, undoErr)
			}
			return fmt.Errorf("%w; rolled back to the checkpoint", err)
		}
	}
	return nil
}

// kernel is one apply on one node: what it changed, to undo on failure.
type kernel struct {
	n    Node
	f    Fidelity
	undo []undoStep
}

// undoStep reverses one change.
type undoStep struct {
	what string
	do   func() error
}

// changed records how to reverse a change just made (only kept when the
// checkpoint switch is on, but cheap either way).
func (k *kernel) changed(what string, do func() error) {
	k.undo = append(k.undo, undoStep{what: what, do: do})
}

// rollback reverses every recorded change, last first, and reports those
// it could not reverse.
func (k *kernel) rollback() error {
	var errs []error
	for _, step := range slices.Backward(k.undo) {
		if err := step.do(); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", step.what, err))
		}
	}
	k.undo = nil
	return errors.Join(errs...)
}

func (k *kernel) applyInterface(i nmstate.Interface) error {
	if i.State == nmstate.StateAbsent {
		link, err := k.n.Links.LinkByName(i.Name)
		if err != nil {
			return nil // already gone
		}
		// Not undone: a deleted link would have to be rebuilt with its
		// ports (docs/fidelity.md lists it as not simulated).
		if err := k.n.Links.LinkDel(link); err != nil {
			return fmt.Errorf("delete link %s: %w", i.Name, err)
		}
		return nil
	}
	switch i.Type {
	case nmstate.TypeLinuxBridge:
		return k.applyBridge(i)
	case nmstate.TypeVLAN:
		if i.VLAN == nil {
			return errors.New("vlan settings missing")
		}
		parent, err := k.n.Links.LinkByName(i.VLAN.BaseIface)
		if err != nil {
			return fmt.Errorf("base interface %s: %w", i.VLAN.BaseIface, err)
		}
		return k.ensure(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: i.Name, ParentIndex: parent.Attrs().Index}, VlanId: int(i.VLAN.ID)}, int(i.MTU))
	case nmstate.TypeBond:
		return k.applyBond(i)
	case nmstate.TypeEthernet:
		return k.applyEthernet(i)
	}
	return fmt.Errorf("the nmstate stand-in cannot build interfaces of type %s", i.Type)
}

// ensure creates a link that does not exist yet, then sets its MTU and brings it up.
func (k *kernel) ensure(want netlink.Link, mtu int) error {
	name := want.Attrs().Name
	link, err := k.n.Links.LinkByName(name)
	if err != nil {
		if err := k.n.Links.LinkAdd(want); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if link, err = k.n.Links.LinkByName(name); err != nil {
			return fmt.Errorf("find link %s after creating it: %w", name, err)
		}
		created := link
		k.changed("create "+name, func() error { return k.n.Links.LinkDel(created) })
	}
	if err := k.setMTU(link, mtu); err != nil {
		return err
	}
	return k.setUp(link)
}

func (k *kernel) setMTU(link netlink.Link, mtu int) error {
	old := link.Attrs().MTU
	if mtu <= 0 || old == mtu {
		return nil
	}
	if err := k.n.Links.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("set MTU %d: %w", mtu, err)
	}
	k.changed("MTU of "+link.Attrs().Name, func() error { return k.n.Links.LinkSetMTU(link, old) })
	return nil
}

func (k *kernel) setUp(link netlink.Link) error {
	if err := k.n.Links.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up link %s: %w", link.Attrs().Name, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		k.changed("bring up "+link.Attrs().Name, func() error { return k.n.Links.LinkSetDown(link) })
	}
	return nil
}

// setMaster enslaves a port, remembering its master before.
func (k *kernel) setMaster(port, master netlink.Link) error {
	old := port.Attrs().MasterIndex
	if old == master.Attrs().Index {
		return nil
	}
	if err := k.n.Links.LinkSetMaster(port, master); err != nil {
		return err //nolint:wrapcheck // the callers name the port
	}
	k.changed("master of "+port.Attrs().Name, func() error {
		if old == 0 {
			return k.n.Links.LinkSetNoMaster(port)
		}
		return k.n.Links.LinkSetMasterByIndex(port, old)
	})
	return nil
}

func (k *kernel) applyBridge(i nmstate.Interface) error {
	filtering := i.Filtering()
	if err := k.ensure(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: i.Name}, VlanFiltering: &filtering}, int(i.MTU)); err != nil {
		return err
	}
	bridge, err := k.n.Links.LinkByName(i.Name)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", i.Name, err)
	}
	if current, ok := bridge.(*netlink.Bridge); !ok || current.VlanFiltering == nil || *current.VlanFiltering != filtering {
		if err := k.n.Links.BridgeSetVlanFiltering(bridge, filtering); err != nil {
			return fmt.Errorf("vlan_filtering: %w", err)
		}
		k.changed("vlan_filtering of "+i.Name, func() error { return k.n.Links.BridgeSetVlanFiltering(bridge, !filtering) })
	}
	for _, p := range i.Ports() {
		port, err := k.n.Links.LinkByName(p.Name)
		if err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
		if err := k.setMaster(port, bridge); err != nil {
			return fmt.Errorf("attach port %s: %w", p.Name, err)
		}
		if err := k.setUp(port); err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
		if p.VLAN == nil {
			continue
		}
		if err := k.trunk(port, p); err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
	}
	return nil
}

// portVLAN is one VLAN entry of a bridge port.
type portVLAN struct {
	id             uint16
	pvid, untagged bool
}

// trunk gives a port its trunk tags. With Fidelity.DefaultPVID the port
// keeps the bridge's default PVID as NetworkManager leaves it; without,
// it carries exactly its tags. Entries of an earlier generation go.
func (k *kernel) trunk(port netlink.Link, p nmstate.Port) error {
	before, err := k.portVLANs(port)
	if err != nil {
		return err
	}
	k.changed("VLANs of "+p.Name, func() error { return k.setPortVLANs(port, before) })
	// The bridge's default PVID is the kernel's, 1: nothing the operator
	// writes sets vlan-default-pvid. A trunk tag of the same VLAN
	// overrides it, as port VLANs do in NetworkManager.
	keepDefault := k.f.DefaultPVID && !slices.Contains(p.Trunked(), defaultPVID)
	want := map[uint16]portVLAN{}
	for _, id := range p.Trunked() {
		want[uint16(id)] = portVLAN{id: uint16(id)}
	}
	if keepDefault {
		want[defaultPVID] = portVLAN{id: defaultPVID, pvid: true, untagged: true}
	}
	for _, v := range before {
		if w, ok := want[v.id]; !ok || w != v {
			if err := k.n.Links.BridgeVlanDel(port, v.id, v.pvid, v.untagged, false, true); err != nil {
				return fmt.Errorf("drop VLAN %d: %w", v.id, err)
			}
		}
	}
	for _, tag := range p.VLAN.TrunkTags {
		if err := k.addTrunkTag(port, tag); err != nil {
			return err
		}
	}
	if keepDefault {
		if err := k.n.Links.BridgeVlanAdd(port, defaultPVID, true, true, false, true); err != nil {
			return fmt.Errorf("keep the default PVID %d: %w", defaultPVID, err)
		}
	}
	return nil
}

// defaultPVID is the kernel's default PVID of a new bridge.
const defaultPVID = 1

// addTrunkTag lets one trunk tag through a port, tagged: a range in one
// message (2-4094 would take 4,093 otherwise); a single VLAN alone, since
// the kernel refuses a range whose ends are equal (EINVAL).
func (k *kernel) addTrunkTag(port netlink.Link, tag nmstate.TrunkTag) error {
	if tag.IDRange == nil || tag.IDRange.Min == tag.IDRange.Max {
		id := tag.ID
		if tag.IDRange != nil {
			id = tag.IDRange.Min
		}
		if err := k.n.Links.BridgeVlanAdd(port, uint16(id), false, false, false, true); err != nil {
			return fmt.Errorf("trunk VLAN %d: %w", id, err)
		}
		return nil
	}
	lo, hi := tag.IDRange.Min, tag.IDRange.Max
	if err := k.n.Links.BridgeVlanAddRange(port, uint16(lo), uint16(hi), false, false, false, true); err != nil {
		return fmt.Errorf("trunk VLANs %d-%d: %w", lo, hi, err)
	}
	return nil
}

// portVLANs reads a port's VLAN entries.
func (k *kernel) portVLANs(port netlink.Link) ([]portVLAN, error) {
	all, err := k.n.Links.BridgeVlanList()
	if err != nil {
		return nil, fmt.Errorf("list bridge VLANs: %w", err)
	}
	var out []portVLAN
	for _, info := range all[int32(port.Attrs().Index)] {
		out = append(out, portVLAN{id: info.Vid, pvid: info.PortVID(), untagged: info.EngressUntag()})
	}
	return out, nil
}

// setPortVLANs puts back a port's VLAN entries as they were.
func (k *kernel) setPortVLANs(port netlink.Link, vlans []portVLAN) error {
	now, err := k.portVLANs(port)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range now {
		errs = append(errs, k.n.Links.BridgeVlanDel(port, v.id, v.pvid, v.untagged, false, true))
	}
	for _, v := range vlans {
		errs = append(errs, k.n.Links.BridgeVlanAdd(port, v.id, v.pvid, v.untagged, false, true))
	}
	return errors.Join(errs...)
}

func (k *kernel) applyBond(i nmstate.Interface) error {
	bond := netlink.NewLinkBond(netlink.LinkAttrs{Name: i.Name})
	if i.LinkAggregation != nil {
		bond.Mode = netlink.StringToBondMode(i.LinkAggregation.Mode)
	}
	if err := k.ensure(bond, int(i.MTU)); err != nil {
		return err
	}
	master, err := k.n.Links.LinkByName(i.Name)
	if err != nil {
		return fmt.Errorf("find bond %s: %w", i.Name, err)
	}
	if i.LinkAggregation == nil {
		return nil
	}
	for _, name := range i.LinkAggregation.Port {
		port, err := k.n.Links.LinkByName(name)
		if err != nil {
			return fmt.Errorf("bond port %s: %w", name, err)
		}
		if port.Attrs().MasterIndex == master.Attrs().Index {
			continue
		}
		// A port joins a bond while down.
		if err := k.n.Links.LinkSetDown(port); err != nil {
			return fmt.Errorf("take down bond port %s: %w", name, err)
		}
		if port.Attrs().Flags&net.FlagUp != 0 {
			k.changed("take down "+name, func() error { return k.n.Links.LinkSetUp(port) })
		}
		if err := k.setMaster(port, master); err != nil {
			return fmt.Errorf("enslave %s: %w", name, err)
		}
		if err := k.n.Links.LinkSetUp(port); err != nil {
			return fmt.Errorf("bring up bond port %s: %w", name, err)
		}
	}
	return nil
}

func (k *kernel) applyEthernet(i nmstate.Interface) error {
	link, err := k.n.Links.LinkByName(i.Name)
	if err != nil {
		return fmt.Errorf("no such NIC: %w", err)
	}
	if err := k.setMTU(link, int(i.MTU)); err != nil {
		return err
	}
	if i.Ethernet != nil && i.Ethernet.SRIOV != nil && i.Ethernet.SRIOV.TotalVFs != nil {
		if err := k.setVFs(i.Name, int(*i.Ethernet.SRIOV.TotalVFs)); err != nil {
			return err
		}
	}
	return k.setUp(link)
}

// setVFs writes a PF's VF count in the node's sysfs.
func (k *kernel) setVFs(name string, count int) error {
	path := filepath.Join(k.n.SysfsRoot, "class", "net", name, "device", "sriov_numvfs")
	old, readErr := os.ReadFile(path)
	if readErr == nil && strings.TrimSpace(string(old)) == strconv.Itoa(count) {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(count)+"\n"), 0o644); err != nil {
		return fmt.Errorf("set the VF count: %w", err)
	}
	if readErr == nil {
		k.changed("VF count of "+name, func() error { return os.WriteFile(path, old, 0o644) })
	}
	return nil
}
