package placement

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Node is what placement knows of one node.
type Node struct {
	Name          string
	Labels        map[string]string
	Unschedulable bool
	// Capability is nil when the node has no NodeCapability (no agent yet).
	Capability *vmv1alpha1.NodeCapabilityStatus
	// SilentFor is how long the agent's Lease has not been renewed beyond its
	// duration; zero while it reports.
	SilentFor time.Duration
}

// check is one link of the eligibility chain: the reason the node fails, or "".
type check func(node *Node, needs []Requirement, selector map[string]string) string

func chain() []check {
	return []check{agentReporting, schedulable, matchesSelector, offersEverything}
}

func agentReporting(node *Node, _ []Requirement, _ map[string]string) string {
	switch {
	case node.Capability == nil:
		return "no NodeCapability: the vmop-agent has not reported"
	case node.SilentFor > 0:
		// No duration here: status must not change with the clock alone.
		return "agent not reporting: its Lease expired"
	}
	return ""
}

func schedulable(node *Node, _ []Requirement, _ map[string]string) string {
	if node.Unschedulable {
		return "node is cordoned"
	}
	return ""
}

func matchesSelector(node *Node, _ []Requirement, selector map[string]string) string {
	if !labels.SelectorFromSet(selector).Matches(labels.Set(node.Labels)) {
		return "does not match highAvailability.nodeSelector"
	}
	return ""
}

func offersEverything(node *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if ok, why := Offers(node.Capability, need); !ok {
			return why
		}
	}
	return ""
}

// Offers says whether a capability satisfies one requirement, and why not.
func Offers(c *vmv1alpha1.NodeCapabilityStatus, need Requirement) (bool, string) {
	switch need.Kind {
	case NeedKVM:
		if c.KVM == nil || !c.KVM.Available {
			reason := "not reported"
			if c.KVM != nil && c.KVM.Reason != "" {
				reason = c.KVM.Reason
			}
			return false, "KVM unavailable: " + reason
		}
	case NeedBridge:
		bridge := findBridge(c, need.Name)
		if bridge == nil {
			return false, "bridge " + need.Name + " missing"
		}
		if !bridge.Up {
			return false, "bridge " + need.Name + " is down"
		}
	case NeedVLAN:
		return vlanAllowed(c, need)
	case NeedOVS:
		return ovsBridgeUp(c, need.Name)
	case NeedLink:
		return linkUp(c, need.Name)
	case NeedSRIOV:
		return freeVFs(c)
	case NeedPolicy:
		return policyVerified(c, need.Name)
	}
	return true, ""
}

func findBridge(c *vmv1alpha1.NodeCapabilityStatus, name string) *vmv1alpha1.BridgeStatus {
	for i := range c.Bridges {
		if c.Bridges[i].Name == name {
			return &c.Bridges[i]
		}
	}
	return nil
}

// uplinkPorts are the bridge's ports that lead off the node: those the agent
// lists as uplinks or bonds; when none is, every port.
func uplinkPorts(c *vmv1alpha1.NodeCapabilityStatus, bridge *vmv1alpha1.BridgeStatus) []vmv1alpha1.BridgePort {
	physical := map[string]bool{}
	for _, u := range c.Uplinks {
		physical[u.Name] = true
	}
	for _, b := range c.Bonds {
		physical[b.Name] = true
	}
	var ports []vmv1alpha1.BridgePort
	for _, port := range bridge.Ports {
		if physical[port.Name] {
			ports = append(ports, port)
		}
	}
	if len(ports) == 0 {
		return bridge.Ports
	}
	return ports
}

// vlanAllowed: a bridge without VLAN filtering passes every tag; a filtering
// bridge must allow the VLAN on an uplink port.
func vlanAllowed(c *vmv1alpha1.NodeCapabilityStatus, need Requirement) (bool, string) {
	bridge := findBridge(c, need.Name)
	if bridge == nil {
		return false, "bridge " + need.Name + " missing"
	}
	if !bridge.VLANFiltering {
		return true, ""
	}
	ports := uplinkPorts(c, bridge)
	for _, port := range ports {
		if ok, _ := vmv1alpha1.VLANsContain(port.VLANs, int(need.VLAN)); ok {
			return true, ""
		}
	}
	names := make([]string, 0, len(ports))
	for _, port := range ports {
		names = append(names, port.Name)
	}
	if len(names) == 0 {
		return false, fmt.Sprintf("VLAN %d not allowed: bridge %s has no ports", need.VLAN, need.Name)
	}
	return false, fmt.Sprintf("VLAN %d not allowed on uplink %s", need.VLAN, strings.Join(names, ","))
}

func ovsBridgeUp(c *vmv1alpha1.NodeCapabilityStatus, name string) (bool, string) {
	for _, b := range c.OVSBridges {
		if b.Name == name {
			if !b.Up {
				return false, "OVS bridge " + name + " is down"
			}
			return true, ""
		}
	}
	return false, "OVS bridge " + name + " missing"
}

func linkUp(c *vmv1alpha1.NodeCapabilityStatus, name string) (bool, string) {
	for _, u := range c.Uplinks {
		if u.Name == name {
			if !u.Up || !u.Carrier {
				return false, "link " + name + " has no carrier"
			}
			return true, ""
		}
	}
	for _, v := range c.VLANs {
		if v.Name == name {
			if !v.Up {
				return false, "VLAN interface " + name + " is down"
			}
			return true, ""
		}
	}
	for _, b := range c.Bonds {
		if b.Name == name {
			if !b.Up {
				return false, "bond " + name + " is down"
			}
			return true, ""
		}
	}
	return false, "link " + name + " missing"
}

func freeVFs(c *vmv1alpha1.NodeCapabilityStatus) (bool, string) {
	if len(c.SRIOV) == 0 {
		return false, "no SR-IOV physical function"
	}
	var full []string
	for _, pf := range c.SRIOV {
		if pf.LinkUp && pf.NumVFs > pf.VFsInUse {
			return true, ""
		}
		full = append(full, pf.Name)
	}
	sort.Strings(full)
	return false, "no free VFs on " + strings.Join(full, ",")
}

func policyVerified(c *vmv1alpha1.NodeCapabilityStatus, name string) (bool, string) {
	for _, p := range c.Policies {
		if p.Name == name {
			if !p.Verified {
				return false, "policy " + name + " not verified: " + p.Message
			}
			return true, ""
		}
	}
	return false, "policy " + name + " not applied on this node"
}
