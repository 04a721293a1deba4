package hostnetwork

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// An edit of a HostNetwork is judged node by node: what its current group
// policies build on each node against what the new plan builds there. A
// node that keeps an interface is never told to remove it, whichever
// policy builds it before and after; only what a node loses is reverted
// there, by a revert policy for that node alone.

// built is what a HostNetwork's policies build on one node, bottom-up
// (the order the builders write, which RevertOf reverses).
type built struct {
	order  []desired.BuiltInterface
	byName map[string]desired.BuiltInterface
}

func (b *built) add(iface desired.BuiltInterface) {
	if b.byName == nil {
		b.byName = map[string]desired.BuiltInterface{}
	}
	if _, seen := b.byName[iface.Name]; !seen {
		b.order = append(b.order, iface)
	}
	b.byName[iface.Name] = iface
}

// builtOn maps each node to what the policies build on it: the union of
// the policies whose nodeSelector matches the node's labels.
func builtOn(policies []*nmstatev1.NodeNetworkConfigurationPolicy, nodes []corev1.Node) (map[string]*built, error) {
	out := map[string]*built{}
	for _, policy := range policies {
		interfaces, err := desired.Built(policy.Spec.DesiredState)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", policy.Name, err)
		}
		selector := labels.SelectorFromSet(policy.Spec.NodeSelector)
		for i := range nodes {
			if !selector.Matches(labels.Set(nodes[i].Labels)) {
				continue
			}
			b := out[nodes[i].Name]
			if b == nil {
				b = &built{}
				out[nodes[i].Name] = b
			}
			for _, iface := range interfaces {
				b.add(iface)
			}
		}
	}
	return out, nil
}

// departed adds to what was built on each node what a group policy built
// on the nodes it was written for (the status's builtOn record) and no
// longer selects: their labels changed. kubernetes-nmstate deletes such a
// node's enactment and reverts nothing
// (controllers/handler/nodenetworkconfigurationpolicy_controller.go), so
// the record is the only trace of what the node has; with it, a node that
// leaves the nodeSelector loses its interfaces like any other edit, through
// a revert of its own and behind the same EditHeld gate. Nodes gone from
// the cluster are skipped. Pure.
func departed(before map[string]*built, groups []*nmstatev1.NodeNetworkConfigurationPolicy, record []vmv1alpha1.PolicyNodes,
	nodes []corev1.Node) error {
	byName := map[string]*nmstatev1.NodeNetworkConfigurationPolicy{}
	for _, policy := range groups {
		byName[policy.Name] = policy
	}
	byNode := map[string]*corev1.Node{}
	for i := range nodes {
		byNode[nodes[i].Name] = &nodes[i]
	}
	for _, entry := range record {
		policy := byName[entry.Policy]
		if policy == nil {
			continue // deleted: it builds nothing to compare
		}
		selector := labels.SelectorFromSet(policy.Spec.NodeSelector)
		var interfaces []desired.BuiltInterface
		for _, name := range entry.Nodes {
			node := byNode[name]
			if node == nil || selector.Matches(labels.Set(node.Labels)) {
				continue
			}
			if interfaces == nil {
				var err error
				if interfaces, err = desired.Built(policy.Spec.DesiredState); err != nil {
					return fmt.Errorf("policy %s: %w", policy.Name, err)
				}
			}
			b := before[name]
			if b == nil {
				b = &built{}
				before[name] = b
			}
			for _, iface := range interfaces {
				b.add(iface)
			}
		}
	}
	return nil
}

// builtRecord is the builtOn record of a plan once written: each policy
// with the nodes it selects. Pure.
func builtRecord(policies []*nmstatev1.NodeNetworkConfigurationPolicy, nodes []corev1.Node) []vmv1alpha1.PolicyNodes {
	out := []vmv1alpha1.PolicyNodes{}
	for _, policy := range policies {
		selector := labels.SelectorFromSet(policy.Spec.NodeSelector)
		entry := vmv1alpha1.PolicyNodes{Policy: policy.Name}
		for i := range nodes {
			if selector.Matches(labels.Set(nodes[i].Labels)) {
				entry.Nodes = append(entry.Nodes, nodes[i].Name)
			}
		}
		slices.Sort(entry.Nodes)
		out = append(out, entry)
	}
	slices.SortFunc(out, func(a, b vmv1alpha1.PolicyNodes) int { return strings.Compare(a.Policy, b.Policy) })
	return out
}

// loss is what an edit takes from one node.
type loss struct {
	// revert are the interfaces the node keeps no more, bottom-up.
	revert []desired.BuiltInterface
	// vfs are PFs whose VF count changes: the kernel destroys every VF
	// before it makes the new count.
	vfs []string
}

// what names the lost interfaces, for messages.
func (l loss) what() []string {
	var names []string
	for _, iface := range l.revert {
		if iface.VFs != nil {
			names = append(names, "the VFs of "+iface.Name)
		} else {
			names = append(names, iface.Name)
		}
	}
	for _, pf := range l.vfs {
		names = append(names, "the VFs of "+pf+" (VF count changes)")
	}
	return names
}

// lossesOf compares, per node, what is built before and after. Pure.
func lossesOf(before, after map[string]*built) map[string]loss {
	out := map[string]loss{}
	for node, had := range before {
		var l loss
		keeps := after[node]
		for _, iface := range had.order {
			kept, ok := desired.BuiltInterface{}, false
			if keeps != nil {
				kept, ok = keeps.byName[iface.Name]
			}
			switch {
			case !ok || kept.Type != iface.Type || (iface.VFs != nil && kept.VFs == nil):
				l.revert = append(l.revert, iface)
			case iface.VFs != nil && *kept.VFs != *iface.VFs:
				l.vfs = append(l.vfs, iface.Name)
			}
		}
		if len(l.revert) > 0 || len(l.vfs) > 0 {
			out[node] = l
		}
	}
	return out
}

// keptBy drops from a revert what the plan builds on the node after all
// (an edit put it back while the revert was pending).
func keptBy(revert []desired.BuiltInterface, keeps *built) []desired.BuiltInterface {
	if keeps == nil {
		return revert
	}
	var left []desired.BuiltInterface
	for _, iface := range revert {
		if kept, ok := keeps.byName[iface.Name]; ok && kept.Type == iface.Type {
			continue
		}
		left = append(left, iface)
	}
	return left
}

// hostnameSelector picks exactly one node: a revert is aimed at the nodes
// that lose something by their kubernetes.io/hostname label, so the
// controller writes nothing to Nodes and no other node can match. It
// refuses a node without the label, or whose value another node shares.
func hostnameSelector(node string, nodes []corev1.Node) (map[string]string, error) {
	value := ""
	for i := range nodes {
		if nodes[i].Name == node {
			value = nodes[i].Labels[corev1.LabelHostname]
		}
	}
	if value == "" {
		return nil, fmt.Errorf("node %s has no %s label to aim its revert at", node, corev1.LabelHostname)
	}
	for i := range nodes {
		if nodes[i].Name != node && nodes[i].Labels[corev1.LabelHostname] == value {
			return nil, fmt.Errorf("nodes %s and %s share %s=%s: a revert for one would reach the other", node, nodes[i].Name, corev1.LabelHostname, value)
		}
	}
	return map[string]string{corev1.LabelHostname: value}, nil
}

// blocked are the nodes an edit takes something from while VMs of the
// network run there, each with what it loses and whose VMs run. Pure.
func blocked(losses map[string]loss, vms map[string][]string) []string {
	var out []string
	for _, node := range slices.Sorted(maps.Keys(losses)) {
		if users := vms[node]; len(users) > 0 {
			out = append(out, fmt.Sprintf("%s loses %s (VMs of %s)", node, strings.Join(losses[node].what(), ", "), strings.Join(bounded(users, 3), ", ")))
		}
	}
	return out
}

// bounded lists at most n names, then how many more.
func bounded(names []string, n int) []string {
	sort.Strings(names)
	if len(names) <= n {
		return names
	}
	return append(slices.Clone(names[:n]), fmt.Sprintf("%d more", len(names)-n))
}

// NodeReverts is what an edit from the group policies before to those
// after removes, per node: the revert state each node that loses
// something gets (the kernel tests of the nmstate stand-in replay it). Pure.
func NodeReverts(before, after []*nmstatev1.NodeNetworkConfigurationPolicy, nodes []corev1.Node) (map[string]nmstateshared.State, error) {
	had, err := builtOn(before, nodes)
	if err != nil {
		return nil, err
	}
	keeps, err := builtOn(after, nodes)
	if err != nil {
		return nil, err
	}
	out := map[string]nmstateshared.State{}
	for node, l := range lossesOf(had, keeps) {
		if len(l.revert) > 0 {
			out[node] = desired.RevertOf(l.revert)
		}
	}
	return out, nil
}
