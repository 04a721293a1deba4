package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/nmstate"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// policyVersion is one version of a policy as a watch delivered it.
type policyVersion struct {
	event    watch.EventType
	name     string
	selector map[string]string
	// absent are the interfaces it tells its nodes to remove (state absent,
	// or an SR-IOV PF's VFs set to 0).
	absent []string
}

// policyRecorder records every version of a HostNetwork's policies.
type policyRecorder struct {
	mu       sync.Mutex
	versions []policyVersion
}

// recordPolicies watches the policies of a HostNetwork until the test ends.
func recordPolicies(t *testing.T, hostNetwork string) *policyRecorder {
	t.Helper()
	watcher, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	events, err := watcher.Watch(context.Background(), &nmstatev1.NodeNetworkConfigurationPolicyList{},
		client.MatchingLabels{vmv1alpha1.LabelHostNetwork: hostNetwork})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(events.Stop)
	r := &policyRecorder{}
	go func() {
		for event := range events.ResultChan() {
			policy, ok := event.Object.(*nmstatev1.NodeNetworkConfigurationPolicy)
			if !ok {
				continue
			}
			v := policyVersion{event: event.Type, name: policy.Name, selector: policy.Spec.NodeSelector}
			if doc, err := nmstate.Parse(policy.Spec.DesiredState.Raw); err == nil {
				for _, i := range doc.Interfaces {
					zeroVFs := i.Ethernet != nil && i.Ethernet.SRIOV != nil && i.Ethernet.SRIOV.TotalVFs != nil && *i.Ethernet.SRIOV.TotalVFs == 0
					if i.State == nmstate.StateAbsent || zeroVFs {
						v.absent = append(v.absent, i.Name)
					}
				}
			}
			r.mu.Lock()
			r.versions = append(r.versions, v)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *policyRecorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.versions)
}

// since are the versions recorded from mark on.
func (r *policyRecorder) since(mark int) []policyVersion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]policyVersion(nil), r.versions[mark:]...)
}

// toldAbsent lists, for versions from mark on, each node that a version
// telling iface absent selects (by the nodes' labels).
func (r *policyRecorder) toldAbsent(mark int, iface string, nodes map[string]map[string]string) map[string][]string {
	out := map[string][]string{}
	for _, v := range r.since(mark) {
		for _, name := range v.absent {
			if name != iface {
				continue
			}
			for node, nodeLabels := range nodes {
				if labels.SelectorFromSet(v.selector).Matches(labels.Set(nodeLabels)) {
					out[node] = append(out[node], v.name)
				}
			}
		}
	}
	return out
}

// expectNeverAbsent fails when a version from mark on told one of keepers
// to remove iface.
func (r *policyRecorder) expectNeverAbsent(t *testing.T, mark int, iface string, nodes map[string]map[string]string, keepers ...string) {
	t.Helper()
	told := r.toldAbsent(mark, iface, nodes)
	for _, node := range keepers {
		if len(told[node]) > 0 {
			t.Errorf("node %s keeps %s but was told to remove it by %v (versions %+v)", node, iface, told[node], r.since(mark))
		}
	}
}

// editNodes are the nodes of the edit tests: ed-a1 and ed-a2 in group a
// (rack r1), ed-b1 in group b. Each agent verifies br-ed and any policy of it.
func editNodes(t *testing.T, zone string) map[string]map[string]string {
	t.Helper()
	nodes := map[string]map[string]string{
		zone + "-a1": {"zone": zone, "grp": "a", "rack": "r1"},
		zone + "-a2": {"zone": zone, "grp": "a", "rack": "r1"},
		zone + "-b1": {"zone": zone, "grp": "b"},
	}
	for name, nodeLabels := range nodes {
		c := fullCapability()
		c.Bridges = append(c.Bridges, vmv1alpha1.BridgeStatus{Name: "br-" + zone, Up: true, Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true}}})
		for _, p := range []string{"vmop-" + zone, "vmop-" + zone + ".a", "vmop-" + zone + ".b"} {
			c.Policies = append(c.Policies, vmv1alpha1.PolicyVerification{Name: p, Enactment: "Available", Verified: true})
		}
		withLabels := map[string]string{}
		for k, v := range nodeLabels {
			withLabels[k] = v
		}
		if err := addNode(context.Background(), cluster.Client, name, withLabels, c); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cluster.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
			_ = cluster.Client.Delete(context.Background(), &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: name}})
		})
		nodeLabels[corev1.LabelHostname] = name
	}
	return nodes
}

// onNode pins a profile's VM to one node.
func onNode(node string) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{corev1.LabelHostname: vmv1alpha1.LabelValue(node)}}
	}
}

// runVMOn starts a profile's VM on br-<zone> on one node.
func runVMOn(t *testing.T, ns, name, zone, node string) {
	t.Helper()
	create(t, profile(name, ns, onNode(node), onNetwork(vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-" + zone})))
	if p := waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning); p.Status.NodeName != node {
		t.Fatalf("%s runs on %q, not %s", name, p.Status.NodeName, node)
	}
}

// editUplinks changes a HostNetwork's spec as an admin does.
func editHostNetwork(t *testing.T, name string, change func(*vmv1alpha1.HostNetworkSpec)) {
	t.Helper()
	observe.Eventually(t, 10*time.Second, "edit HostNetwork "+name, func() (bool, string) {
		h := getHostNetwork(t, name)
		change(&h.Spec)
		err := cluster.Client.Update(context.Background(), h)
		return err == nil, fmt.Sprint(err)
	})
}

// policiesAre waits until the HostNetwork has exactly these policies (by
// name, with these node selectors' extra keys), reverts included.
func policiesAre(t *testing.T, hostNetwork string, want map[string]map[string]string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("policies %v", want), func() (bool, string) {
		var list nmstatev1.NodeNetworkConfigurationPolicyList
		if err := cluster.Client.List(context.Background(), &list, client.MatchingLabels{vmv1alpha1.LabelHostNetwork: hostNetwork}); err != nil {
			return false, err.Error()
		}
		have := map[string]map[string]string{}
		for _, p := range list.Items {
			have[p.Name] = p.Spec.NodeSelector
		}
		if len(have) != len(want) {
			return false, fmt.Sprintf("%v", have)
		}
		for name, selector := range want {
			got, ok := have[name]
			if !ok {
				return false, fmt.Sprintf("%v", have)
			}
			for k, v := range selector {
				if got[k] != v {
					return false, fmt.Sprintf("%v", have)
				}
			}
		}
		return true, ""
	})
}

// expectHeld waits for the EditHeld condition naming the node and profile,
// and checks the policies stay as they were.
func expectHeld(t *testing.T, hostNetwork, node, user string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, "edit held", func() (bool, string) {
		h := getHostNetwork(t, hostNetwork)
		held := meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionEditHeld)
		return held != nil && held.Reason == vmv1alpha1.ReasonInUse && strings.Contains(held.Message, node+" loses br-"+hostNetwork) &&
			strings.Contains(held.Message, user) && strings.Contains(held.Message, "HostNetwork "+hostNetwork), fmt.Sprintf("%+v", held)
	})
	expectEvent(t, "default", hostNetwork, vmv1alpha1.ReasonEditHeld)
}

func expectNotHeld(t *testing.T, hostNetwork string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, "edit no longer held", func() (bool, string) {
		h := getHostNetwork(t, hostNetwork)
		held := meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionEditHeld)
		return held == nil && h.Status.ObservedGeneration == h.Generation, fmt.Sprintf("%+v", held)
	})
}

// TestEditingAHostNetworkKeepsWhatVMsUse: a managed bridge is split into
// two named uplink groups, a group's selector changes, the groups are
// merged back and the nodeSelector narrowed, with VMs running. Every
// version of every policy is recorded: no node that keeps the bridge is
// ever told to remove it. An edit that would take the bridge from a node
// with a VM is held (condition and event) and applied once the VM is gone,
// and then only that node is told to remove it.
func TestEditingAHostNetworkKeepsWhatVMsUse(t *testing.T) {
	const zone = "ed"
	nodes := editNodes(t, zone)
	a1, a2, b1 := zone+"-a1", zone+"-a2", zone+"-b1"
	policies := recordPolicies(t, zone)
	declare(t, zone, vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-" + zone, Managed: true,
		Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, NodeSelector: map[string]string{"zone": zone}, NamespaceSelector: metav1.LabelSelector{}})
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone: {"zone": zone}})
	ns := newNamespace(t)
	runVMOn(t, ns, "vm-a", zone, a1)
	runVMOn(t, ns, "vm-b", zone, b1)

	// Split: groups a and b cover every node, so nobody loses the bridge.
	mark := policies.mark()
	editHostNetwork(t, zone, func(s *vmv1alpha1.HostNetworkSpec) {
		s.Uplinks = []vmv1alpha1.Uplink{{Name: "a", NodeSelector: map[string]string{"grp": "a"}, Interface: "eth1"},
			{Name: "b", NodeSelector: map[string]string{"grp": "b"}, Interface: "eth1"}}
	})
	observe.Eventually(t, 30*time.Second, "the single uplink's policy replaced", func() (bool, string) {
		_, there := policyState(t, "vmop-"+zone)
		return !there, "vmop-" + zone + " still there"
	})
	policies.expectNeverAbsent(t, mark, "br-"+zone, nodes, a1, a2, b1)
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone + ".a": {"grp": "a"}, "vmop-" + zone + ".b": {"grp": "b"}})
	expectNotHeld(t, zone)

	// Group a's selector changes to one picking the same nodes: the same
	// policy is updated, nothing is removed.
	mark = policies.mark()
	editHostNetwork(t, zone, func(s *vmv1alpha1.HostNetworkSpec) { s.Uplinks[0].NodeSelector = map[string]string{"rack": "r1"} })
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone + ".a": {"rack": "r1"}, "vmop-" + zone + ".b": {"grp": "b"}})
	policies.expectNeverAbsent(t, mark, "br-"+zone, nodes, a1, a2, b1)

	// Group b's selector changes to pick no node: b1, where vm-b runs,
	// would lose the bridge. Held until vm-b is gone.
	mark = policies.mark()
	editHostNetwork(t, zone, func(s *vmv1alpha1.HostNetworkSpec) { s.Uplinks[1].NodeSelector = map[string]string{"grp": "c"} })
	expectHeld(t, zone, b1, ns+"/vm-b")
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone + ".a": {"rack": "r1"}, "vmop-" + zone + ".b": {"grp": "b"}})
	if err := cluster.Client.Delete(context.Background(), getProfile(t, ns, "vm-b")); err != nil {
		t.Fatal(err)
	}
	expectNotHeld(t, zone)
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone + ".a": {"rack": "r1"}, "vmop-" + zone + ".b": {"grp": "c"}})
	told := policies.toldAbsent(mark, "br-"+zone, nodes)
	if len(told) != 1 || len(told[b1]) == 0 {
		t.Fatalf("only %s, and it, should have been told to remove br-%s; told: %v", b1, zone, told)
	}

	// Merge back: one group a on every node; b's policy goes, nothing is removed.
	mark = policies.mark()
	editHostNetwork(t, zone, func(s *vmv1alpha1.HostNetworkSpec) {
		s.Uplinks = []vmv1alpha1.Uplink{{Name: "a", Interface: "eth1"}}
	})
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone + ".a": {"zone": zone}})
	policies.expectNeverAbsent(t, mark, "br-"+zone, nodes, a1, a2, b1)

	// Narrow the nodeSelector to group a with a VM on b1 again: held,
	// then applied once the VM is gone, and only b1 is told.
	runVMOn(t, ns, "vm-b2", zone, b1)
	mark = policies.mark()
	editHostNetwork(t, zone, func(s *vmv1alpha1.HostNetworkSpec) { s.NodeSelector = map[string]string{"zone": zone, "grp": "a"} })
	expectHeld(t, zone, b1, ns+"/vm-b2")
	if err := cluster.Client.Delete(context.Background(), getProfile(t, ns, "vm-b2")); err != nil {
		t.Fatal(err)
	}
	expectNotHeld(t, zone)
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone + ".a": {"zone": zone, "grp": "a"}})
	told = policies.toldAbsent(mark, "br-"+zone, nodes)
	if len(told) != 1 || len(told[b1]) == 0 {
		t.Fatalf("only %s, and it, should have been told to remove br-%s; told: %v", b1, zone, told)
	}
	if p := getProfile(t, ns, "vm-a"); p.Status.Phase != vmv1alpha1.PhaseRunning || p.Status.NodeName != a1 {
		t.Fatalf("vm-a: %s", observe.Describe(p))
	}
}

// TestForegroundDeletionRevertsFirst: deleting a managed HostNetwork with
// propagationPolicy Foreground (as some GitOps tools do) lets the garbage
// collector delete its owned policies at once; the host is still told to
// remove what they built before the HostNetwork goes, even when the
// policies were gone before the controller saw the deletion.
func TestForegroundDeletionRevertsFirst(t *testing.T) {
	const zone = "fg"
	nodes := editNodes(t, zone)
	policies := recordPolicies(t, zone)
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: zone}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge,
		BridgeName: "br-" + zone, Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}},
		NodeSelector: map[string]string{"zone": zone}, NamespaceSelector: metav1.LabelSelector{}}}
	create(t, h)
	policiesAre(t, zone, map[string]map[string]string{"vmop-" + zone: {"zone": zone}})
	observe.Eventually(t, 30*time.Second, "finalizer on", func() (bool, string) {
		return len(getHostNetwork(t, zone).Finalizers) > 0, "no finalizer yet"
	})
	// With the controller down the garbage collector surely deletes the
	// owned policy first, as it may on any cluster.
	restart := withControllerStopped(t)
	if err := cluster.Client.Delete(context.Background(), h, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "the garbage collector deleted the owned policy", func() (bool, string) {
		_, there := policyState(t, "vmop-"+zone)
		return !there, "still there"
	})
	restart()
	observe.Eventually(t, time.Minute, "HostNetwork gone", func() (bool, string) {
		return !getObject(t, &vmv1alpha1.HostNetwork{}, "", zone), "still there"
	})
	told := policies.toldAbsent(0, "br-"+zone, nodes)
	for node := range nodes {
		if len(told[node]) == 0 {
			t.Errorf("node %s was never told to remove br-%s before the HostNetwork went; versions: %+v", node, zone, policies.since(0))
		}
	}
	policiesAre(t, zone, map[string]map[string]string{})
	expectEvent(t, "default", zone, vmv1alpha1.ReasonReverting)
}
