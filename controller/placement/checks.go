package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

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

// remedy says what to change so that a node passes the check it failed;
// it runs only for a failing node (explain.go).
type remedy func(node *Node, needs []Requirement, selector map[string]string) string

// link is a check with the remedy that answers it.
type link struct {
	check check
	fix   remedy
}

func chain() []link {
	return []link{
		{agentReporting, fixAgent},
		{schedulable, fixCordon},
		{matchesSelector, fixSelector},
		{selectedByHostNetworks, fixHostNetworkSelector},
		{labelsExist, fixLabelName},
		{probesHealthy, fixProbe},
		{offersEverything, fixOffer},
	}
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

// selectedByHostNetworks: a declared host network exists only on the nodes
// its nodeSelector picks.
func selectedByHostNetworks(node *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if need.Kind == NeedNodeLabels && !labels.SelectorFromSet(need.Selector).Matches(labels.Set(node.Labels)) {
			return "HostNetwork " + need.Name + " does not select this node (its nodeSelector)"
		}
	}
	return ""
}

// labelsExist: the VM's required node affinity names each requirement's
// label, so a requirement whose label no node can carry (a name no label
// key can hold, such as a bridge ending in '-') is offered nowhere.
func labelsExist(_ *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if why := unlabelable(need); why != "" {
			return why
		}
	}
	return ""
}

func unlabelable(need Requirement) string {
	if need.Kind == NeedNodeLabels {
		return "" // a HostNetwork's selector, matched against the node's own labels
	}
	if len(validation.IsQualifiedName(need.Label)) > 0 {
		return "no node can carry the label " + need.Label + ": it is not a valid label key"
	}
	return ""
}

// probesHealthy excludes a node whose agent says the probe a requirement
// depends on failed: its report of that part is stale, whatever it shows.
func probesHealthy(node *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if why := failedProbe(node.Capability, need); why != "" {
			return why
		}
	}
	return ""
}

func failedProbe(capability *vmv1alpha1.NodeCapabilityStatus, need Requirement) string {
	for _, probe := range probesFor(need) {
		if c := meta.FindStatusCondition(capability.Conditions, probe); c != nil &&
			c.Status == metav1.ConditionFalse && c.Reason == vmv1alpha1.ReasonProbeFailed {
			return fmt.Sprintf("the agent's %s probe failed: %s", probeNoun(probe), c.Message)
		}
	}
	return ""
}

// probesFor names the capability conditions of the probes a requirement
// is judged from.
func probesFor(need Requirement) []string {
	switch need.Kind {
	case NeedBridge, NeedOVS, NeedLink:
		return []string{vmv1alpha1.ConditionLinksProbed}
	case NeedVLAN:
		return []string{vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionBridgeVLANsProbed}
	case NeedSRIOV:
		return []string{vmv1alpha1.ConditionSRIOVProbed}
	case NeedHostNetwork:
		if need.HostNetwork != nil && need.HostNetwork.Type == vmv1alpha1.NetworkTypeSRIOV {
			return []string{vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionSRIOVProbed}
		}
		return []string{vmv1alpha1.ConditionLinksProbed}
	}
	return nil
}

func probeNoun(condition string) string {
	switch condition {
	case vmv1alpha1.ConditionLinksProbed:
		return "link"
	case vmv1alpha1.ConditionBridgeVLANsProbed:
		return "bridge VLAN"
	case vmv1alpha1.ConditionSRIOVProbed:
		return "SR-IOV"
	}
	return condition
}

// offersEverything: the node offers every requirement. When the agent had
// to leave part of its inventory out to keep within the size bound, what
// seems missing may be among it, so the reason says the report is cut.
func offersEverything(node *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if ok, why := Offers(node.Capability, need); !ok {
			if c := meta.FindStatusCondition(node.Capability.Conditions, vmv1alpha1.ConditionTruncated); c != nil && c.Status == metav1.ConditionTrue {
				why += "; the agent's report is truncated: " + c.Message
			}
			return why
		}
	}
	return ""
}

// offeredHere says whether a node with this capability offers one
// requirement by every per-requirement link of the chain: its label can
// exist, the probes it is judged from did not fail, and the capability
// shows it. NodeLabels labels exactly these, so a node is labelled for a
// requirement exactly when Evaluate finds it offers it.
func offeredHere(c *vmv1alpha1.NodeCapabilityStatus, need Requirement) bool {
	if unlabelable(need) != "" || failedProbe(c, need) != "" {
		return false
	}
	ok, _ := Offers(c, need)
	return ok
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
		return freeVFs(c, nil)
	case NeedHostNetwork:
		return offersHostNetwork(c, need.HostNetwork)
	}
	return true, ""
}

// offersHostNetwork: a managed network's policy is verified on the node
// (and an SR-IOV one has free VFs); an unmanaged one is there and up, and
// an unmanaged bridge with allowedVLANs filters VLANs.
func offersHostNetwork(c *vmv1alpha1.NodeCapabilityStatus, offer *HostNetworkOffer) (bool, string) {
	if offer.Managed {
		if ok, why := policiesVerified(c, offer); !ok {
			return false, why
		}
	}
	switch offer.Type {
	case vmv1alpha1.NetworkTypeBridge:
		bridge := findBridge(c, offer.Bridge)
		if bridge == nil || !bridge.Up {
			return Offers(c, Requirement{Kind: NeedBridge, Name: offer.Bridge})
		}
		if offer.VLANFiltering && !bridge.VLANFiltering {
			return false, "bridge " + offer.Bridge + " does not filter VLANs (vlan_filtering off), so HostNetwork " + offer.Name +
				"'s allowedVLANs cannot confine its VMs here"
		}
	case vmv1alpha1.NetworkTypeOVS:
		return ovsBridgeUp(c, offer.Bridge)
	case vmv1alpha1.NetworkTypeMacvlan:
		return anyLinkUp(c, offer.Uplinks)
	case vmv1alpha1.NetworkTypeSRIOV:
		return freeVFs(c, offer.Uplinks)
	}
	return true, ""
}

// policiesVerified: of a managed network's policies, the ones that select
// this node (its agent lists them) are all verified, and there is one.
func policiesVerified(c *vmv1alpha1.NodeCapabilityStatus, offer *HostNetworkOffer) (bool, string) {
	listed := 0
	for _, p := range c.Policies {
		if !slices.Contains(offer.Policies, p.Name) {
			continue
		}
		listed++
		if !p.Verified {
			return false, "HostNetwork " + offer.Name + " not verified: policy " + p.Name + ": " + p.Message
		}
	}
	if listed == 0 {
		return false, "HostNetwork " + offer.Name + " not built here: no policy of it applies to this node"
	}
	return true, ""
}

func anyLinkUp(c *vmv1alpha1.NodeCapabilityStatus, names []string) (bool, string) {
	why := "no uplink"
	for _, name := range names {
		ok, reason := linkUp(c, name)
		if ok {
			return true, ""
		}
		why = reason
	}
	return false, why
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

// freeVFs: some physical function (among pfs, when given) has a free VF.
func freeVFs(c *vmv1alpha1.NodeCapabilityStatus, pfs []string) (bool, string) {
	var candidates []vmv1alpha1.SRIOVPF
	for _, pf := range c.SRIOV {
		if len(pfs) == 0 || slices.Contains(pfs, pf.Name) {
			candidates = append(candidates, pf)
		}
	}
	if len(candidates) == 0 {
		if len(pfs) > 0 {
			return false, "no SR-IOV physical function " + strings.Join(pfs, " or ")
		}
		return false, "no SR-IOV physical function"
	}
	var full []string
	for _, pf := range candidates {
		if pf.LinkUp && pf.NumVFs > pf.VFsInUse {
			return true, ""
		}
		full = append(full, pf.Name)
	}
	sort.Strings(full)
	return false, "no free VFs on " + strings.Join(full, ",")
}
