package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/api/nmstate"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// check is the verdict on one desired interface.
type check struct {
	kernel   string // what the kernel shows, e.g. "bridge br-mgmt up, ports eth1"
	problems []string
}

// Kernel is what the node shows: its links (with bridge VLANs) and its
// SR-IOV physical functions.
type Kernel struct {
	Links probe.Snapshot
	PFs   []vmv1alpha1.SRIOVPF
}

// Compare judges one policy on this node. enactment is the state nmstate's
// enactment reports ("" when there is none yet).
func Compare(name, enactment string, raw []byte, kernel Kernel) vmv1alpha1.PolicyVerification {
	v := vmv1alpha1.PolicyVerification{Name: name, Enactment: enactment}
	desired, err := nmstate.Parse(raw)
	if err != nil {
		v.Message = err.Error()
		return v
	}
	var shown, problems []string
	for _, iface := range desired.Interfaces {
		c := checkInterface(iface, kernel)
		if c.kernel != "" {
			shown = append(shown, c.kernel)
		}
		problems = append(problems, c.problems...)
	}
	v.Kernel = strings.Join(shown, "; ")
	v.Verified = len(problems) == 0
	if !v.Verified {
		v.Message = claim(enactment) + strings.Join(problems, "; ")
	}
	return v
}

// claim puts what nmstate says in front of the mismatch, since "nmstate says
// Available but..." is the drift worth noticing.
func claim(enactment string) string {
	if enactment == "" {
		return "no enactment for this node yet; "
	}
	return fmt.Sprintf("nmstate reports %s but ", enactment)
}

func checkInterface(iface nmstate.Interface, kernel Kernel) check {
	snap := kernel.Links
	var c check
	switch iface.Type {
	case nmstate.TypeLinuxBridge:
		c = checkBridge(iface, snap)
	case nmstate.TypeVLAN:
		c = checkVLAN(iface, snap)
	case nmstate.TypeOVSBridge:
		c = checkKind(iface, snap, probe.KindOVS, "OVS bridge")
	case nmstate.TypeBond:
		c = checkBond(iface, snap)
	case nmstate.TypeEthernet:
		c = checkEthernet(iface, kernel)
	default:
		return check{} // the rest: nmstate's business, not placement's
	}
	c.problems = append(c.problems, checkMTU(iface, snap)...)
	return c
}

// checkMTU: an interface the policy gives an MTU has it.
func checkMTU(iface nmstate.Interface, snap probe.Snapshot) []string {
	l := snap.ByName(iface.Name)
	if iface.MTU == 0 || iface.State == nmstate.StateAbsent || l == nil || l.MTU == int(iface.MTU) {
		return nil
	}
	return []string{fmt.Sprintf("%s has MTU %d, want %d", iface.Name, l.MTU, iface.MTU)}
}

// checkEthernet: a NIC the policy sets a VF count on has that many VFs.
func checkEthernet(iface nmstate.Interface, kernel Kernel) check {
	l := kernel.Links.ByName(iface.Name)
	if l == nil {
		return check{kernel: "NIC " + iface.Name + " missing", problems: []string{fmt.Sprintf("NIC %s does not exist", iface.Name)}}
	}
	c := check{kernel: fmt.Sprintf("NIC %s %s", iface.Name, upWord(l))}
	if iface.Ethernet == nil || iface.Ethernet.SRIOV == nil || iface.Ethernet.SRIOV.TotalVFs == nil {
		return c
	}
	want := *iface.Ethernet.SRIOV.TotalVFs
	for _, pf := range kernel.PFs {
		if pf.Name == iface.Name {
			c.kernel += fmt.Sprintf(", %d VFs", pf.NumVFs)
			if pf.NumVFs != want {
				c.problems = append(c.problems, fmt.Sprintf("%s has %d VFs, want %d", iface.Name, pf.NumVFs, want))
			}
			return c
		}
	}
	if want > 0 {
		c.problems = append(c.problems, fmt.Sprintf("%s is not an SR-IOV physical function here, want %d VFs", iface.Name, want))
	}
	return c
}

// checkPresence handles state: absent, and a missing link.
func checkPresence(iface nmstate.Interface, snap probe.Snapshot, noun string) (*probe.Link, *check) {
	l := snap.ByName(iface.Name)
	if iface.State == nmstate.StateAbsent {
		if l != nil {
			return nil, &check{kernel: noun + " " + iface.Name + " present", problems: []string{fmt.Sprintf("%s %s should be absent but exists", noun, iface.Name)}}
		}
		return nil, &check{kernel: noun + " " + iface.Name + " absent"}
	}
	if l == nil {
		return nil, &check{kernel: noun + " " + iface.Name + " missing", problems: []string{fmt.Sprintf("%s %s does not exist", noun, iface.Name)}}
	}
	return l, nil
}

func upWord(l *probe.Link) string {
	if l.AdminUp {
		return "up"
	}
	return "down"
}

func checkUp(iface nmstate.Interface, l *probe.Link, noun string) []string {
	if iface.State != nmstate.StateDown && !l.AdminUp {
		return []string{fmt.Sprintf("%s %s is down", noun, iface.Name)}
	}
	return nil
}

func checkKind(iface nmstate.Interface, snap probe.Snapshot, kind, noun string) check {
	l, done := checkPresence(iface, snap, noun)
	if done != nil {
		return *done
	}
	c := check{kernel: fmt.Sprintf("%s %s %s", noun, iface.Name, upWord(l))}
	if l.Kind != kind {
		c.problems = append(c.problems, fmt.Sprintf("%s is a %s link, not a %s", iface.Name, l.Kind, noun))
	}
	c.problems = append(c.problems, checkUp(iface, l, noun)...)
	return c
}

func checkBridge(iface nmstate.Interface, snap probe.Snapshot) check {
	c := checkKind(iface, snap, probe.KindBridge, "bridge")
	if len(c.problems) > 0 || iface.State == nmstate.StateAbsent {
		return c
	}
	bridge := snap.ByName(iface.Name)
	if iface.Filtering() && !bridge.VLANFiltering {
		c.problems = append(c.problems, fmt.Sprintf("bridge %s does not filter VLANs, but its trunk ports need it", iface.Name))
	}
	var enslaved []string
	for _, port := range iface.Ports() {
		l := snap.ByName(port.Name)
		switch {
		case l == nil:
			c.problems = append(c.problems, fmt.Sprintf("port %s of bridge %s does not exist", port.Name, iface.Name))
		case l.Master != iface.Name:
			c.problems = append(c.problems, fmt.Sprintf("port %s is not attached to bridge %s", port.Name, iface.Name))
		default:
			enslaved = append(enslaved, port.Name)
			c.problems = append(c.problems, checkTrunk(port, l, bridge.DefaultPVID)...)
		}
	}
	if len(enslaved) > 0 {
		c.kernel += ", ports " + strings.Join(enslaved, ",")
	}
	return c
}

func checkVLAN(iface nmstate.Interface, snap probe.Snapshot) check {
	c := checkKind(iface, snap, probe.KindVLAN, "VLAN")
	if len(c.problems) > 0 || iface.State == nmstate.StateAbsent || iface.VLAN == nil {
		return c
	}
	l := snap.ByName(iface.Name)
	c.kernel += fmt.Sprintf(", id %d on %s", l.VLANID, l.Parent)
	if l.VLANID != int(iface.VLAN.ID) {
		c.problems = append(c.problems, fmt.Sprintf("VLAN %s has id %d, want %d", iface.Name, l.VLANID, iface.VLAN.ID))
	}
	if l.Parent != iface.VLAN.BaseIface {
		c.problems = append(c.problems, fmt.Sprintf("VLAN %s rides on %q, want %s", iface.Name, l.Parent, iface.VLAN.BaseIface))
	}
	return c
}

func checkBond(iface nmstate.Interface, snap probe.Snapshot) check {
	c := checkKind(iface, snap, probe.KindBond, "bond")
	if len(c.problems) > 0 || iface.State == nmstate.StateAbsent || iface.LinkAggregation == nil {
		return c
	}
	l := snap.ByName(iface.Name)
	c.kernel += ", mode " + l.BondMode
	if want := iface.LinkAggregation.Mode; want != "" && want != l.BondMode {
		c.problems = append(c.problems, fmt.Sprintf("bond %s is in mode %s, want %s", iface.Name, l.BondMode, want))
	}
	for _, port := range iface.LinkAggregation.Port {
		if m := snap.ByName(port); m == nil || m.Master != iface.Name {
			c.problems = append(c.problems, fmt.Sprintf("%s is not a member of bond %s", port, iface.Name))
		}
	}
	slices.Sort(c.problems)
	return c
}

// checkTrunk: a trunk port allows exactly its trunk tags (a VLAN missing
// drops the traffic of VMs on it; an extra one leaks a segment the admin
// did not declare), apart from the bridge's default PVID.
//
// The default PVID is judged as nmstate reports it, not as the policy
// spells it. NetworkManager gives every port of a filtering bridge the
// bridge's default PVID (vlan-default-pvid, 1 unless set), PVID and
// egress-untagged, and adds the trunk VLANs beside it
// (src/core/devices/nm-device-bridge.c, bridge_set_vlan_options and
// merge_bridge_vlan_default_pvid); nmstate leaves that one VLAN out when it
// reports a port (rust/src/lib/nispor/linux_bridge_port_vlan.rs). So a
// trunk built by real nmstate lists VLAN 1 in the kernel besides its
// tags, and nmstate itself calls it applied. The agent tolerates it
// rather than writing vlan-default-pvid into the policy: a default PVID
// of 0 would also strip the bridge's own untagged VLAN, and every port
// kubernetes-nmstate defaults to trunk 2-4094 (pkg/bridge/bridge.go)
// would lose untagged traffic the admin never asked to drop. The VLAN is
// tolerated only as the bridge's default PVID: any other extra VLAN, or a
// bridge whose default PVID is another VLAN, still fails.
func checkTrunk(port nmstate.Port, l *probe.Link, defaultPVID int) []string {
	want := port.Trunked()
	if want == nil {
		return nil
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if slices.Equal(want, withoutDefaultPVID(l.PortVLANs, want, defaultPVID)) {
		return nil
	}
	return []string{fmt.Sprintf("port %s trunks VLANs %s, want %s", port.Name,
		orNone(vmv1alpha1.FormatVLANs(l.PortVLANs)), vmv1alpha1.FormatVLANs(want))}
}

// withoutDefaultPVID drops the bridge's default PVID from a port's VLANs,
// unless the policy asks for that VLAN itself.
func withoutDefaultPVID(have, want []int, defaultPVID int) []int {
	if defaultPVID == 0 || slices.Contains(want, defaultPVID) {
		return have
	}
	return slices.DeleteFunc(slices.Clone(have), func(id int) bool { return id == defaultPVID })
}

func orNone(list string) string {
	if list == "" {
		return "none"
	}
	return list
}
