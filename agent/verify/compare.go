package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// check is the verdict on one desired interface.
type check struct {
	kernel   string // what the kernel shows, e.g. "bridge br-mgmt up, ports eth1"
	problems []string
}

// Compare judges one policy on this node. enactment is the state nmstate's
// enactment reports ("" when there is none yet).
func Compare(name, enactment string, raw []byte, snap probe.Snapshot) vmv1alpha1.PolicyVerification {
	v := vmv1alpha1.PolicyVerification{Name: name, Enactment: enactment}
	desired, err := parseDesired(raw)
	if err != nil {
		v.Message = err.Error()
		return v
	}
	var kernel, problems []string
	for _, iface := range desired.Interfaces {
		c := checkInterface(iface, snap)
		if c.kernel != "" {
			kernel = append(kernel, c.kernel)
		}
		problems = append(problems, c.problems...)
	}
	v.Kernel = strings.Join(kernel, "; ")
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

func checkInterface(iface desiredInterface, snap probe.Snapshot) check {
	switch iface.Type {
	case typeLinuxBridge:
		return checkBridge(iface, snap)
	case typeVLAN:
		return checkVLAN(iface, snap)
	case typeOVSBridge:
		return checkKind(iface, snap, probe.KindOVS, "OVS bridge")
	case typeBond:
		return checkBond(iface, snap)
	}
	return check{} // ethernet and the rest: nmstate's business, not placement's
}

// checkPresence handles state: absent, and a missing link.
func checkPresence(iface desiredInterface, snap probe.Snapshot, noun string) (*probe.Link, *check) {
	l := snap.ByName(iface.Name)
	if iface.State == stateAbsent {
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

func checkUp(iface desiredInterface, l *probe.Link, noun string) []string {
	if iface.State != stateDown && !l.AdminUp {
		return []string{fmt.Sprintf("%s %s is down", noun, iface.Name)}
	}
	return nil
}

func checkKind(iface desiredInterface, snap probe.Snapshot, kind, noun string) check {
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

func checkBridge(iface desiredInterface, snap probe.Snapshot) check {
	c := checkKind(iface, snap, probe.KindBridge, "bridge")
	if len(c.problems) > 0 || iface.State == stateAbsent {
		return c
	}
	var enslaved []string
	for _, port := range iface.ports() {
		l := snap.ByName(port)
		switch {
		case l == nil:
			c.problems = append(c.problems, fmt.Sprintf("port %s of bridge %s does not exist", port, iface.Name))
		case l.Master != iface.Name:
			c.problems = append(c.problems, fmt.Sprintf("port %s is not attached to bridge %s", port, iface.Name))
		default:
			enslaved = append(enslaved, port)
		}
	}
	if len(enslaved) > 0 {
		c.kernel += ", ports " + strings.Join(enslaved, ",")
	}
	return c
}

func checkVLAN(iface desiredInterface, snap probe.Snapshot) check {
	c := checkKind(iface, snap, probe.KindVLAN, "VLAN")
	if len(c.problems) > 0 || iface.State == stateAbsent || iface.VLAN == nil {
		return c
	}
	l := snap.ByName(iface.Name)
	c.kernel += fmt.Sprintf(", id %d on %s", l.VLANID, l.Parent)
	if l.VLANID != iface.VLAN.ID {
		c.problems = append(c.problems, fmt.Sprintf("VLAN %s has id %d, want %d", iface.Name, l.VLANID, iface.VLAN.ID))
	}
	if l.Parent != iface.VLAN.BaseIface {
		c.problems = append(c.problems, fmt.Sprintf("VLAN %s rides on %q, want %s", iface.Name, l.Parent, iface.VLAN.BaseIface))
	}
	return c
}

func checkBond(iface desiredInterface, snap probe.Snapshot) check {
	c := checkKind(iface, snap, probe.KindBond, "bond")
	if len(c.problems) > 0 || iface.State == stateAbsent || iface.LinkAggregation == nil {
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
