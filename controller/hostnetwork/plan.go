package hostnetwork

import (
	"context"
	"fmt"
	"sort"
	"strings"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// maxProblems bounds the nodes a status lists.
const maxProblems = 10

// world is what a HostNetwork's reconcile reads.
type world struct {
	nodes        []corev1.Node
	capabilities map[string]*vmv1alpha1.NodeCapabilityStatus
	hostNetworks []vmv1alpha1.HostNetwork
	nmstate      bool
}

func (r *Reconciler) observe(ctx context.Context) (world, error) {
	w := world{capabilities: map[string]*vmv1alpha1.NodeCapabilityStatus{}, nmstate: r.NMState}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return w, fmt.Errorf("list nodes: %w", err)
	}
	w.nodes = nodes.Items
	var capabilities vmv1alpha1.NodeCapabilityList
	if err := r.Client.List(ctx, &capabilities); err != nil {
		return w, fmt.Errorf("list NodeCapabilities: %w", err)
	}
	for i := range capabilities.Items {
		w.capabilities[capabilities.Items[i].Name] = &capabilities.Items[i].Status
	}
	var hostNetworks vmv1alpha1.HostNetworkList
	if err := r.Client.List(ctx, &hostNetworks); err != nil {
		return w, fmt.Errorf("list HostNetworks: %w", err)
	}
	w.hostNetworks = hostNetworks.Items
	return w, nil
}

// plan is what a HostNetwork should be on the cluster: its policies, where
// each node gets its uplink from, and a conflict that stops it.
type plan struct {
	policies []*nmstatev1.NodeNetworkConfigurationPolicy
	// selected are the nodes the nodeSelector picks, sorted.
	selected []string
	// uplinks maps a selected node to the uplink its group gives it (nil: none).
	uplinks map[string]*vmv1alpha1.Uplink
	// conflict, when set, is why the network cannot be built.
	conflict *metav1.Condition
}

// planOf decides a HostNetwork's plan from the world. Pure.
func planOf(h *vmv1alpha1.HostNetwork, w world) plan {
	p := plan{uplinks: map[string]*vmv1alpha1.Uplink{}}
	for i := range w.nodes {
		node := &w.nodes[i]
		if !labels.SelectorFromSet(h.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
			continue
		}
		p.selected = append(p.selected, node.Name)
		uplink, overlap := uplinkOf(h, node)
		if overlap != "" && p.conflict == nil {
			p.conflict = conflict(vmv1alpha1.ReasonUplinkGroupsOverlap, "node %s matches the nodeSelector of more than one uplink: %s", node.Name, overlap)
		}
		p.uplinks[node.Name] = uplink
	}
	sort.Strings(p.selected)
	if p.conflict == nil {
		p.conflict = bridgeConflict(h, w.hostNetworks)
	}
	if p.conflict == nil && h.Spec.Managed {
		p.conflict = uplinkConflict(h, p, w)
	}
	if p.conflict == nil && h.Spec.Managed && !w.nmstate {
		p.conflict = conflict(vmv1alpha1.ReasonNMStateMissing, "a managed network is built by kubernetes-nmstate (nmstate.io/v1), which is not installed")
	}
	if h.Spec.Managed {
		for i := range h.Spec.Uplinks {
			uplink := &h.Spec.Uplinks[i]
			state, err := desired.HostNetworkState(h, uplink)
			if err != nil {
				p.conflict = conflict(vmv1alpha1.ReasonUplinkConflict, "%v", err)
				break
			}
			p.policies = append(p.policies, desired.HostNetworkPolicy(h, uplink, state))
		}
	}
	return p
}

func conflict(reason, format string, args ...any) *metav1.Condition {
	return &metav1.Condition{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// uplinkOf is the uplink a node gets: the one group whose nodeSelector
// matches it (an uplink without one matches every node). overlap names the
// groups when more than one does.
func uplinkOf(h *vmv1alpha1.HostNetwork, node *corev1.Node) (*vmv1alpha1.Uplink, string) {
	var matched []string
	var found *vmv1alpha1.Uplink
	for i := range h.Spec.Uplinks {
		uplink := &h.Spec.Uplinks[i]
		if labels.SelectorFromSet(uplink.NodeSelector).Matches(labels.Set(node.Labels)) {
			matched = append(matched, desired.UplinkInterface(uplink))
			found = uplink
		}
	}
	if len(matched) > 1 {
		return found, strings.Join(matched, " and ")
	}
	return found, ""
}

// bridgeConflict: one bridge name, one HostNetwork. The older keeps it.
func bridgeConflict(h *vmv1alpha1.HostNetwork, all []vmv1alpha1.HostNetwork) *metav1.Condition {
	if h.Spec.BridgeName == "" {
		return nil
	}
	for i := range all {
		other := &all[i]
		if other.Name != h.Name && other.Spec.BridgeName == h.Spec.BridgeName && attach.Older(other, h) {
			return conflict(vmv1alpha1.ReasonBridgeConflict, "bridge %s is already declared by the older HostNetwork %s", h.Spec.BridgeName, other.Name)
		}
	}
	return nil
}

// uplinkConflict: two managed networks must not take the same NIC or bond
// on the same node. The older keeps it.
func uplinkConflict(h *vmv1alpha1.HostNetwork, p plan, w world) *metav1.Condition {
	nodes := map[string]*corev1.Node{}
	for i := range w.nodes {
		nodes[w.nodes[i].Name] = &w.nodes[i]
	}
	for i := range w.hostNetworks {
		other := &w.hostNetworks[i]
		if other.Name == h.Name || !other.Spec.Managed || !attach.Older(other, h) ||
			(other.Spec.Type == vmv1alpha1.NetworkTypeSRIOV) != (h.Spec.Type == vmv1alpha1.NetworkTypeSRIOV) {
			continue
		}
		for _, name := range p.selected {
			mine := p.uplinks[name]
			node := nodes[name]
			if mine == nil || !labels.SelectorFromSet(other.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
				continue
			}
			theirs, _ := uplinkOf(other, node)
			if theirs == nil {
				continue
			}
			for _, claim := range desired.UplinkClaims(mine) {
				for _, taken := range desired.UplinkClaims(theirs) {
					if claim == taken {
						return conflict(vmv1alpha1.ReasonUplinkConflict, "uplink %s on node %s is already used by the older HostNetwork %s", claim, name, other.Name)
					}
				}
			}
		}
	}
	return nil
}

// statusOf reports where the network is ready, from what the agents found.
func statusOf(h *vmv1alpha1.HostNetwork, w world, p plan) vmv1alpha1.HostNetworkStatus {
	next := vmv1alpha1.HostNetworkStatus{SelectedNodes: int32(len(p.selected))}
	for _, policy := range p.policies {
		next.Policies = append(next.Policies, policy.Name)
	}
	offer := placement.OfferOf(h)
	need := placement.Requirement{Kind: placement.NeedHostNetwork, Name: h.Name, HostNetwork: &offer}
	var failing []vmv1alpha1.NodeProblem
	for _, node := range p.selected {
		why := ""
		capability := w.capabilities[node]
		switch {
		case len(h.Spec.Uplinks) > 0 && p.uplinks[node] == nil:
			why = "no uplink's nodeSelector matches this node"
		case capability == nil:
			why = "no NodeCapability: the node's vmop-agent has not reported"
		default:
			if ok, reason := placement.Offers(capability, need); !ok {
				why = reason
			}
		}
		if why == "" {
			next.VerifiedNodes++
			continue
		}
		// why may carry the agent's words (a policy's message); cut as a
		// profile's exclusion reasons are.
		failing = append(failing, vmv1alpha1.NodeProblem{Node: node, Message: vmv1alpha1.Truncate(why, vmv1alpha1.MaxExclusionReasonLength)})
	}
	next.Problems = failing[:min(len(failing), maxProblems)]
	next.Ready = fmt.Sprintf("%d/%d", next.VerifiedNodes, next.SelectedNodes)
	next.Conditions = []metav1.Condition{readyCondition(next, p, failing)}
	return next
}

func readyCondition(s vmv1alpha1.HostNetworkStatus, p plan, failing []vmv1alpha1.NodeProblem) metav1.Condition {
	switch {
	case p.conflict != nil:
		return *p.conflict
	case s.SelectedNodes == 0:
		return metav1.Condition{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: vmv1alpha1.ReasonNoNodesSelected,
			Message: "the nodeSelector picks no node"}
	case len(failing) == 0:
		return metav1.Condition{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonAllNodesVerified,
			Message: fmt.Sprintf("verified on all %d selected node(s)", s.SelectedNodes)}
	}
	parts := make([]string, 0, min(len(failing), 3))
	for _, f := range failing[:min(len(failing), 3)] {
		parts = append(parts, f.Node+": "+f.Message)
	}
	message := fmt.Sprintf("verified on %d of %d node(s); %s", s.VerifiedNodes, s.SelectedNodes, strings.Join(parts, "; "))
	if len(failing) > 3 {
		message += fmt.Sprintf("; and %d more", len(failing)-3)
	}
	return metav1.Condition{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: vmv1alpha1.ReasonNodesNotVerified, Message: message}
}
