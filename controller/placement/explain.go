package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Verdict is one node's eligibility for a profile: the first check it
// failed, whole (the status cuts it), and what to change so it passes.
// kubectl vmprofile why prints these; Evaluate summarises them, so the
// plugin and the controller cannot disagree.
type Verdict struct {
	Node     string
	Eligible bool
	// Reason is the first failing check; "" when eligible.
	Reason string
	// Fix says what to change on the node, the profile or a HostNetwork.
	Fix string
}

// Explain runs the eligibility chain over every node, like Evaluate, and
// keeps for each excluded node its reason and the remedy of the failing
// check. The verdicts are sorted by node name.
func Explain(profile *vmv1alpha1.VirtualMachineProfile, needs []Requirement, nodes []Node, options Options) []Verdict {
	needs = effectiveNeeds(needs, options)
	selector := nodeSelector(profile)
	out := make([]Verdict, 0, len(nodes))
	for i := range nodes {
		out = append(out, explainNode(&nodes[i], needs, selector, true))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// explainNode runs the chain over one node; withFix adds the remedy,
// which Evaluate, placing over thousands of nodes, does not need.
func explainNode(node *Node, needs []Requirement, selector map[string]string, withFix bool) Verdict {
	for _, l := range chain() {
		reason := l.check(node, needs, selector)
		if reason == "" {
			continue
		}
		verdict := Verdict{Node: node.Name, Reason: reason}
		if withFix {
			verdict.Fix = l.fix(node, needs, selector)
		}
		return verdict
	}
	return Verdict{Node: node.Name, Eligible: true}
}

// effectiveNeeds drops the KVM requirement on clusters that emulate.
func effectiveNeeds(needs []Requirement, options Options) []Requirement {
	if !options.AllowEmulation {
		return needs
	}
	return slices.DeleteFunc(slices.Clone(needs), func(r Requirement) bool { return r.Kind == NeedKVM })
}

func fixAgent(node *Node, _ []Requirement, _ map[string]string) string {
	pods := "kubectl get pods -A -l app.kubernetes.io/component=agent --field-selector spec.nodeName=" + node.Name
	if node.Capability == nil {
		return "run vmop-agent on " + node.Name + ": its DaemonSet's nodeSelector and tolerations must admit the node (" + pods + ")"
	}
	return "the vmop-agent on " + node.Name + " stopped renewing its Lease: check the node is up and read the agent's log (" + pods + ")"
}

func fixCordon(node *Node, _ []Requirement, _ map[string]string) string {
	return "kubectl uncordon " + node.Name + " once it may run VMs again"
}

func fixSelector(node *Node, _ []Requirement, selector map[string]string) string {
	return "kubectl label node " + node.Name + " " + missingLabels(node, selector) +
		", or change the profile's spec.highAvailability.nodeSelector"
}

func fixHostNetworkSelector(node *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if need.Kind != NeedNodeLabels {
			continue
		}
		if missing := missingLabels(node, need.Selector); missing != "" {
			return "kubectl label node " + node.Name + " " + missing + ", or widen HostNetwork " + need.Name + "'s spec.nodeSelector"
		}
	}
	return ""
}

// missingLabels are the key=value pairs of selector the node lacks, sorted.
func missingLabels(node *Node, selector map[string]string) string {
	var missing []string
	for key, value := range selector {
		if got, ok := node.Labels[key]; !ok || got != value {
			missing = append(missing, key+"="+value)
		}
	}
	sort.Strings(missing)
	return strings.Join(missing, " ")
}

func fixLabelName(_ *Node, _ []Requirement, _ map[string]string) string {
	return "rename the bridge or interface in the profile or its HostNetwork: a label key's name is at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
}

func fixProbe(node *Node, _ []Requirement, _ map[string]string) string {
	return "the agent on " + node.Name + " could not read the node's interfaces: read its log and fix the cause; the node returns once the probe succeeds"
}

// fixOffer answers the first requirement the node does not offer.
func fixOffer(node *Node, needs []Requirement, _ map[string]string) string {
	for _, need := range needs {
		if ok, _ := Offers(node.Capability, need); !ok {
			return fixRequirement(node, need)
		}
	}
	return ""
}

func fixRequirement(node *Node, need Requirement) string {
	on := " on " + node.Name
	switch need.Kind {
	case NeedKVM:
		return "give " + node.Name + " KVM: enable hardware virtualization (VT-x/AMD-V, or nested virtualization) so /dev/kvm exists; " +
			"on a test cluster, run KubeVirt with useEmulation and the chart with controller.allowEmulation=true"
	case NeedBridge:
		return fixBridge(node, need.Name)
	case NeedVLAN:
		if findBridge(node.Capability, need.Name) == nil {
			return fixBridge(node, need.Name)
		}
		return fmt.Sprintf("allow VLAN %d on bridge %s's uplink port%s (bridge vlan add vid %d dev <uplink>), "+
			"or add it to the allowedVLANs of the managed HostNetwork that builds the bridge", need.VLAN, need.Name, on, need.VLAN)
	case NeedOVS:
		return "create Open vSwitch bridge " + need.Name + on + " (ovs-vsctl add-br " + need.Name + ") and bring it up"
	case NeedLink:
		return "bring link " + need.Name + " up with carrier" + on + " (cable, switch port, ip link set " + need.Name + " up)"
	case NeedSRIOV:
		return "free or add SR-IOV VFs" + on + ": raise sriov_numvfs on a physical function, or stop a VM that holds one"
	case NeedHostNetwork:
		return fixHostNetwork(node, need.HostNetwork)
	}
	return ""
}

func fixBridge(node *Node, bridge string) string {
	return "create Linux bridge " + bridge + " on " + node.Name + " and bring it up (ip link add " + bridge +
		" type bridge && ip link set " + bridge + " up), or declare a managed HostNetwork that builds it"
}

func fixHostNetwork(node *Node, offer *HostNetworkOffer) string {
	if offer.Managed {
		if ok, why := policiesVerified(node.Capability, offer); !ok {
			if strings.Contains(why, "no policy of it applies") {
				return "HostNetwork " + offer.Name + " builds nothing on " + node.Name + ": add an uplink (or nodeSelector) that covers the node"
			}
			return "see why HostNetwork " + offer.Name + "'s policy did not take on " + node.Name + ": kubectl get hostnetwork " + offer.Name +
				" -o yaml, and the node's NodeNetworkConfigurationEnactment (kubectl get nnce)"
		}
	}
	switch offer.Type {
	case vmv1alpha1.NetworkTypeBridge:
		bridge := findBridge(node.Capability, offer.Bridge)
		if bridge == nil || !bridge.Up {
			return fixBridge(node, offer.Bridge)
		}
		return "turn on VLAN filtering on bridge " + offer.Bridge + " on " + node.Name + " (ip link set " + offer.Bridge +
			" type bridge vlan_filtering 1), or let the operator manage HostNetwork " + offer.Name
	case vmv1alpha1.NetworkTypeOVS:
		return "create Open vSwitch bridge " + offer.Bridge + " on " + node.Name + " (ovs-vsctl add-br " + offer.Bridge + ") and bring it up"
	case vmv1alpha1.NetworkTypeMacvlan:
		return "bring an uplink of HostNetwork " + offer.Name + " (" + strings.Join(offer.Uplinks, ", ") + ") up with carrier on " + node.Name
	case vmv1alpha1.NetworkTypeSRIOV:
		return "free or add SR-IOV VFs on " + strings.Join(offer.Uplinks, " or ") + " on " + node.Name + ": raise sriov_numvfs, or stop a VM that holds one"
	}
	return ""
}
