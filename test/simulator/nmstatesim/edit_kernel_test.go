//go:build kernelvm

package nmstatesim

import (
	"testing"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/hostnetwork"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// groupPolicies are the group policies the operator writes for a spec.
func groupPolicies(t *testing.T, spec vmv1alpha1.HostNetworkSpec) []*nmstatev1.NodeNetworkConfigurationPolicy {
	t.Helper()
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lab"}, Spec: spec}
	var out []*nmstatev1.NodeNetworkConfigurationPolicy
	for i := range h.Spec.Uplinks {
		state, err := desired.HostNetworkState(h, &h.Spec.Uplinks[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, desired.HostNetworkPolicy(h, &h.Spec.Uplinks[i], state))
	}
	return out
}

// kernelNode is one node: its Node object and its kernel (a namespace).
type kernelNode struct {
	node corev1.Node
	ns   *netnstest.Namespace
}

// applyEdit plays what the operator and nmstate do on each node for an
// edit: the group policies after that select the node, then the node's
// revert, if the edit takes something from it.
func applyEdit(t *testing.T, nodes []kernelNode, before, after []*nmstatev1.NodeNetworkConfigurationPolicy) {
	t.Helper()
	objects := make([]corev1.Node, 0, len(nodes))
	for _, n := range nodes {
		objects = append(objects, n.node)
	}
	reverts, err := hostnetwork.NodeReverts(before, after, objects)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		for _, policy := range after {
			if labels.SelectorFromSet(policy.Spec.NodeSelector).Matches(labels.Set(n.node.Labels)) {
				if err := apply(Node{Name: n.node.Name, Links: n.ns.Handle}, policy.Spec.DesiredState.Raw); err != nil {
					t.Fatalf("%s: policy %s: %v", n.node.Name, policy.Name, err)
				}
			}
		}
		if revert, ok := reverts[n.node.Name]; ok {
			if err := apply(Node{Name: n.node.Name, Links: n.ns.Handle}, revert.Raw); err != nil {
				t.Fatalf("%s: revert: %v", n.node.Name, err)
			}
		}
	}
}

// TestKernelSplitKeepsTheBridgeAndItsVMPorts runs in the kernel VM (the stand-in
// sets VLAN filtering on every bridge it makes, which the host kernel lacks):
// br-lab is built on three nodes, each with a VM's tap on it; its one
// uplink is split into groups a and b, re-selected and merged back. On
// the nodes that keep the bridge it is never re-created (same ifindex)
// and the VM port stays enslaved; the node no group picks any more loses
// it, and only that one.
func TestKernelSplitKeepsTheBridgeAndItsVMPorts(t *testing.T) {
	var nodes []kernelNode
	for _, n := range []struct{ name, grp string }{{"n-a", "a"}, {"n-b", "b"}, {"n-c", "c"}} {
		ns := netnstest.New(t)
		ns.VethPair(t, "eth1", "wire", "")
		nodes = append(nodes, kernelNode{ns: ns, node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name,
			Labels: map[string]string{"grp": n.grp, corev1.LabelHostname: n.name}}}})
	}
	bridge := func(uplinks ...vmv1alpha1.Uplink) []*nmstatev1.NodeNetworkConfigurationPolicy {
		return groupPolicies(t, vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lab", Managed: true, Uplinks: uplinks})
	}
	group := func(name string, selector map[string]string) vmv1alpha1.Uplink {
		return vmv1alpha1.Uplink{Name: name, NodeSelector: selector, Interface: "eth1"}
	}
	one := bridge(vmv1alpha1.Uplink{Interface: "eth1"})
	applyEdit(t, nodes, nil, one)
	index := map[string]int{}
	for _, n := range nodes {
		br, err := n.ns.Handle.LinkByName("br-lab")
		if err != nil {
			t.Fatalf("%s: br-lab not built: %v", n.node.Name, err)
		}
		index[n.node.Name] = br.Attrs().Index
		// A veth stands for the VM's tap: the kernel VM has no /dev/net/tun.
		n.ns.VethPair(t, "vm0", "vm0-guest", "br-lab")
	}
	expectKept := func(step string, kept ...string) {
		t.Helper()
		for _, n := range nodes[:len(kept)] {
			br, err := n.ns.Handle.LinkByName("br-lab")
			if err != nil || br.Attrs().Index != index[n.node.Name] {
				t.Fatalf("%s: %s lost or re-created br-lab (%v)", step, n.node.Name, err)
			}
			for _, port := range []string{"vm0", "eth1"} {
				link, err := n.ns.Handle.LinkByName(port)
				if err != nil || link.Attrs().MasterIndex != br.Attrs().Index {
					t.Fatalf("%s: %s: %s is no longer a port of br-lab (%v)", step, n.node.Name, port, err)
				}
			}
		}
	}

	// Split into groups a and b: n-c, which has no VM, is the only node to lose it.
	split := bridge(group("a", map[string]string{"grp": "a"}), group("b", map[string]string{"grp": "b"}))
	applyEdit(t, nodes[:2], one, split) // n-a and n-b have VMs
	expectKept("split", "n-a", "n-b")
	if err := removeVMPort(nodes[2]); err != nil {
		t.Fatal(err)
	}
	applyEdit(t, nodes[2:], one, split)
	if _, err := nodes[2].ns.Handle.LinkByName("br-lab"); err == nil {
		t.Fatal("split: n-c, in no group, keeps br-lab")
	}
	// Group b re-selected to pick the same node by its hostname, then merged back.
	reselected := bridge(group("a", map[string]string{"grp": "a"}), group("b", map[string]string{corev1.LabelHostname: "n-b"}))
	applyEdit(t, nodes[:2], split, reselected)
	expectKept("re-selected", "n-a", "n-b")
	applyEdit(t, nodes[:2], reselected, bridge(vmv1alpha1.Uplink{Name: "a", Interface: "eth1"}))
	expectKept("merged", "n-a", "n-b")
}

func removeVMPort(n kernelNode) error {
	link, err := n.ns.Handle.LinkByName("vm0")
	if err != nil {
		return err
	}
	return n.ns.Handle.LinkDel(link)
}
