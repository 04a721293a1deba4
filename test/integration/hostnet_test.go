package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/test/observe"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// declare creates a HostNetwork, as a cluster admin does, and deletes it
// when the test ends (waiting until it is gone: its finalizer reverts).
func declare(t *testing.T, name string, spec vmv1alpha1.HostNetworkSpec) *vmv1alpha1.HostNetwork {
	t.Helper()
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, h)
	t.Cleanup(func() {
		_ = cluster.Client.Delete(context.Background(), h)
		observe.Eventually(t, time.Minute, "HostNetwork "+name+" gone", func() (bool, string) {
			return !getObject(t, &vmv1alpha1.HostNetwork{}, "", name), "still there"
		})
	})
	return h
}

func getHostNetwork(t *testing.T, name string) *vmv1alpha1.HostNetwork {
	t.Helper()
	var h vmv1alpha1.HostNetwork
	if !getObject(t, &h, "", name) {
		t.Fatalf("HostNetwork %s missing", name)
	}
	return &h
}

func onNetwork(network vmv1alpha1.NetworkConfig) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks = []vmv1alpha1.NetworkConfig{network} }
}

func policyState(t *testing.T, name string) (string, bool) {
	t.Helper()
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &policy)
	if err != nil {
		return "", false
	}
	// nmstate keeps the state as YAML; compare it as compact JSON.
	state, err := yaml.YAMLToJSON(policy.Spec.DesiredState.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return string(state), true
}

// edgeCapability is a node whose agent found br-edge built on bond0 with
// VLANs 300-301, and judged policy vmop-edge verified or not.
func edgeCapability(verified bool) vmv1alpha1.NodeCapabilityStatus {
	c := fullCapability()
	c.Bonds = []vmv1alpha1.BondStatus{{Name: "bond0", Mode: "802.3ad", Up: true, Members: []string{"eth3", "eth4"}}}
	c.Bridges = append(c.Bridges, vmv1alpha1.BridgeStatus{Name: "br-edge", Up: true, VLANFiltering: true,
		Ports: []vmv1alpha1.BridgePort{{Name: "bond0", Up: true, VLANs: "300-301"}}})
	message := ""
	if !verified {
		message = "nmstate reports Available but bridge br-edge has no port bond0"
	}
	c.Policies = []vmv1alpha1.PolicyVerification{{Name: "vmop-edge", Enactment: "Available", Verified: verified, Message: message}}
	return c
}

func edgeSpec(zone string) vmv1alpha1.HostNetworkSpec {
	return vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-edge", Managed: true,
		Uplinks:      []vmv1alpha1.Uplink{{Bond: &vmv1alpha1.Bond{Name: "bond0", Mode: "802.3ad", Ports: []string{"eth3", "eth4"}}}},
		AllowedVLANs: []vmv1alpha1.VLANRange{"300-301"}, NodeSelector: map[string]string{"zone": zone}, NamespaceSelector: metav1.LabelSelector{}}
}

// TestManagedHostNetworkIsBuiltAndUsed: an admin declares a managed bridge
// after the nodes are up; the controller writes its one policy (trunking
// exactly the allowed VLANs on the bond), reports per node whether the agent
// verified it, and a profile on it runs where it is verified.
func TestManagedHostNetworkIsBuiltAndUsed(t *testing.T) {
	zoneNodes(t, "edge-test", map[string]vmv1alpha1.NodeCapabilityStatus{"edge-a": edgeCapability(true), "edge-b": edgeCapability(false)})
	declare(t, "edge", edgeSpec("edge-test"))
	observe.Eventually(t, 30*time.Second, "policy vmop-edge written", func() (bool, string) {
		state, ok := policyState(t, "vmop-edge")
		return ok && strings.Contains(state, `"trunk-tags":[{"id-range":{"max":301,"min":300}}]`) &&
			strings.Contains(state, `"link-aggregation":{"mode":"802.3ad","port":["eth3","eth4"]}`), state
	})
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	getObject(t, &policy, "", "vmop-edge")
	if policy.Spec.NodeSelector["zone"] != "edge-test" || metav1.GetControllerOf(&policy).Name != "edge" {
		t.Fatalf("policy selector %v owners %v", policy.Spec.NodeSelector, policy.OwnerReferences)
	}
	observe.Eventually(t, 30*time.Second, "status per node", func() (bool, string) {
		h := getHostNetwork(t, "edge")
		ready := meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionReady)
		return h.Status.Ready == "1/2" && ready != nil && ready.Reason == vmv1alpha1.ReasonNodesNotVerified &&
			len(h.Status.Problems) == 1 && h.Status.Problems[0].Node == "edge-b", fmt.Sprintf("%+v", h.Status)
	})

	ns := newNamespace(t)
	create(t, profile("router", ns, inZone("edge-test"), onNetwork(vmv1alpha1.NetworkConfig{Name: "transit", Type: "bridge", BridgeName: "br-edge",
		VLANID: ptr.To[int32](300), IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}})))
	p := waitForPhase(t, ns, "router", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "edge-a" || p.Status.Networks[0].HostNetwork != "edge" {
		t.Fatalf("router: %s, network status %+v", observe.Describe(p), p.Status.Networks)
	}
	if got := observe.Exclusion(p, "edge-b"); !strings.Contains(got, "HostNetwork edge not verified: policy vmop-edge") {
		t.Fatalf("edge-b: %q", got)
	}
	if nodeLabels(t, "edge-a")[placement.HostNetworkLabel("edge")] != "true" || nodeLabels(t, "edge-b")[placement.HostNetworkLabel("edge")] != "" {
		t.Fatal("the host network label must follow the agents' verification")
	}
}

// TestUndeclaredHostNetworkIsRefused: a tenant's profile on a bridge no
// HostNetwork declares makes no policy and no VM, and says why.
func TestUndeclaredHostNetworkIsRefused(t *testing.T) {
	var before nmstatev1.NodeNetworkConfigurationPolicyList
	if err := cluster.Client.List(context.Background(), &before); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	create(t, profile("sneaky", ns, onBridgeVLAN("br-ex", 100)))
	p := waitForCondition(t, ns, "sneaky", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonHostNetworkNotDeclared)
	if p.Status.Phase != vmv1alpha1.PhaseError || !strings.Contains(conditionMessage(p, vmv1alpha1.ConditionReady), "no HostNetwork of type bridge declares bridge br-ex") {
		t.Fatalf("sneaky: %s", observe.Describe(p))
	}
	time.Sleep(time.Second)
	var after nmstatev1.NodeNetworkConfigurationPolicyList
	if err := cluster.Client.List(context.Background(), &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Items) > len(before.Items) || getObject(t, &kubevirtv1.VirtualMachine{}, ns, "sneaky-vm") ||
		getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, "sneaky-lan") {
		t.Fatal("a refused network must create nothing: no policy, no attachment, no VM")
	}
	expectEvent(t, ns, "sneaky", vmv1alpha1.ReasonHostNetworkNotDeclared)
}

// TestRefusals: each rule of a HostNetwork refuses a profile with its own
// reason, a message naming the HostNetwork and the rule, a Warning event,
// and no VM.
func TestRefusals(t *testing.T) {
	declare(t, "narrow", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-narrow", AllowedVLANs: []vmv1alpha1.VLANRange{"10"},
		NamespaceSelector: metav1.LabelSelector{}})
	declare(t, "blue", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-blue",
		NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}})
	cases := []struct {
		name    string
		network vmv1alpha1.NetworkConfig
		reason  string
		message string
	}{
		{"vlan", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-narrow", VLANID: ptr.To[int32](20)},
			vmv1alpha1.ReasonVLANNotAllowed, "network n: VLAN 20 is not allowed on HostNetwork narrow (allowed: 10)"},
		{"untagged", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-narrow"},
			vmv1alpha1.ReasonVLANNotAllowed, "network n: untagged use is not allowed on HostNetwork narrow: set a vlanId among its allowedVLANs (10), or a cluster admin sets its spec.untagged to Allowed"},
		{"mtu", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-lan", MTU: ptr.To[int32](9216)},
			vmv1alpha1.ReasonMTUTooLarge, "network n: mtu 9216 is above HostNetwork lan's 9000"},
		{"namespace", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-blue"},
			vmv1alpha1.ReasonNamespaceNotAllowed, "HostNetwork blue does not allow namespace"},
		{"not found", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", HostNetwork: "nope"},
			vmv1alpha1.ReasonHostNetworkNotFound, "network n: HostNetwork nope does not exist"},
		{"type", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", HostNetwork: "macvlan"},
			vmv1alpha1.ReasonHostNetworkMismatch, "network n: HostNetwork macvlan is of type macvlan, not bridge"},
		{"shared attachment", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", NADName: "kube-system/corp"},
			vmv1alpha1.ReasonNADNamespaceNotShared, "network n: nadName kube-system/corp is in namespace kube-system"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := newNamespace(t)
			name := "refused-" + strings.ReplaceAll(c.name, " ", "-")
			create(t, profile(name, ns, onNetwork(c.network)))
			p := waitForCondition(t, ns, name, vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, c.reason)
			if msg := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured); !strings.Contains(msg, c.message) {
				t.Fatalf("message %q, want %q", msg, c.message)
			}
			if p.Status.Phase != vmv1alpha1.PhaseError || getObject(t, &kubevirtv1.VirtualMachine{}, ns, name+"-vm") {
				t.Fatalf("a refused profile gets no VM: %s", observe.Describe(p))
			}
			expectEvent(t, ns, name, c.reason)
		})
	}
}

// TestTwoHostNetworksCannotClaimOneUplink: a second managed network on the
// same NIC of the same nodes, or a second declaration of a bridge, reports
// the conflict and builds nothing.
func TestTwoHostNetworksCannotClaimOneUplink(t *testing.T) {
	zoneNodes(t, "claim-test", map[string]vmv1alpha1.NodeCapabilityStatus{"claim-a": fullCapability()})
	spec := func(bridge string) vmv1alpha1.HostNetworkSpec {
		return vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: bridge, Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth7"}},
			NodeSelector: map[string]string{"zone": "claim-test"}, NamespaceSelector: metav1.LabelSelector{}}
	}
	declare(t, "first", spec("br-first"))
	observe.Eventually(t, 30*time.Second, "first's policy", func() (bool, string) {
		_, ok := policyState(t, "vmop-first")
		return ok, "no policy yet"
	})
	time.Sleep(1100 * time.Millisecond) // creation times have one-second resolution
	declare(t, "second", spec("br-second"))
	declare(t, "again", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-first", NamespaceSelector: metav1.LabelSelector{}})
	for name, want := range map[string]string{
		"second": "uplink eth7 on node claim-a is already used by the older HostNetwork first",
		"again":  "bridge br-first is already declared by the older HostNetwork first",
	} {
		observe.Eventually(t, 30*time.Second, name+" reports the conflict", func() (bool, string) {
			ready := meta.FindStatusCondition(getHostNetwork(t, name).Status.Conditions, vmv1alpha1.ConditionReady)
			return ready != nil && ready.Status == metav1.ConditionFalse && ready.Message == want, fmt.Sprintf("%+v", ready)
		})
	}
	if _, ok := policyState(t, "vmop-second"); ok {
		t.Fatal("the conflicting network got a policy")
	}
}

// TestDeletingAHostNetwork: deleting a network in use waits and says for
// whom (a user's instance shutting down); once unused, its host side is reverted (state absent seen before the
// policy goes) and it is gone. A node where nmstate never finishes bounds
// the wait: the policy is deleted at the deadline and an event says which
// nodes keep what it built.
func TestDeletingAHostNetwork(t *testing.T) {
	ctx := context.Background()
	zoneNodes(t, "del-test", map[string]vmv1alpha1.NodeCapabilityStatus{"del-a": bridgeCapability("br-del", "vmop-del")})
	spec := edgeSpec("del-test")
	spec.BridgeName = "br-del"
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "del"}, Spec: spec}
	create(t, h)
	observe.Eventually(t, 30*time.Second, "policy vmop-del", func() (bool, string) {
		_, ok := policyState(t, "vmop-del")
		return ok, "no policy yet"
	})
	ns := newNamespace(t)
	create(t, profile("user", ns, inZone("del-test"), onNetwork(vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", BridgeName: "br-del", VLANID: ptr.To[int32](300)})))
	waitForPhase(t, ns, "user", vmv1alpha1.PhaseRunning)
	release := holdInstance(t, ns, "user")

	policies := recordPolicies(t, "del")
	if err := cluster.Client.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "deletion held by its user", func() (bool, string) {
		deleting := meta.FindStatusCondition(getHostNetwork(t, "del").Status.Conditions, vmv1alpha1.ConditionDeleting)
		return deleting != nil && deleting.Reason == vmv1alpha1.ReasonInUse && strings.Contains(deleting.Message, ns+"/user"), fmt.Sprintf("%+v", deleting)
	})
	if _, ok := policyState(t, "vmop-del"); !ok {
		t.Fatal("the policy went while the network is in use")
	}
	release()
	observe.Eventually(t, 30*time.Second, "HostNetwork and its policy gone", func() (bool, string) {
		_, policy := policyState(t, "vmop-del")
		return !policy && !getObject(t, &vmv1alpha1.HostNetwork{}, "", "del"), fmt.Sprintf("policy there: %v", policy)
	})
	delNodes := map[string]map[string]string{"del-a": {"zone": "del-test", corev1.LabelHostname: "del-a"}}
	if told := policies.toldAbsent(0, "br-del", delNodes); len(told["del-a"]) == 0 {
		t.Fatalf("the policy was deleted without first reverting the host side (state absent): %+v", policies.since(0))
	}
	expectEvent(t, "default", "del", vmv1alpha1.ReasonReverting)

	// Now a node where nmstate never finishes.
	if err := addNode(ctx, cluster.Client, "stuck-a", map[string]string{"zone": "stuck-test", simulator.LabelNMStateStuck: "true"}, edgeCapability(true)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stuck-a"}})
		_ = cluster.Client.Delete(ctx, &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "stuck-a"}})
	})
	spec = edgeSpec("stuck-test")
	spec.BridgeName = "br-stuck"
	stuck := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "stuck"}, Spec: spec}
	create(t, stuck)
	observe.Eventually(t, 30*time.Second, "policy vmop-stuck", func() (bool, string) {
		_, ok := policyState(t, "vmop-stuck")
		return ok, "no policy yet"
	})
	// Every version of the HostNetwork is recorded through a watch: the wait
	// lasts the revert timeout (5 s here), which a poll of a loaded machine
	// can miss entirely.
	deletingSeen := recordDeletingConditions(t, "stuck")
	start := time.Now()
	if err := cluster.Client.Delete(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "the wait is in a condition with its deadline", func() (bool, string) {
		seen := deletingSeen()
		for _, deleting := range seen {
			if deleting.Reason == vmv1alpha1.ReasonReverting && strings.Contains(deleting.Message, "(policy vmop-stuck) on stuck-a") &&
				strings.Contains(deleting.Message, "until ") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("Deleting conditions seen: %+v", seen)
	})
	observe.Eventually(t, 30*time.Second, "gone after the deadline", func() (bool, string) {
		return !getObject(t, &vmv1alpha1.HostNetwork{}, "", "stuck"), "still there"
	})
	t.Logf("a stuck revert gave up after %v (bound %v)", time.Since(start).Round(100*time.Millisecond), revertTimeout)
	expectEvent(t, "default", "stuck", vmv1alpha1.ReasonRevertTimedOut)
}

// TestStaticAddressRace: two profiles in different namespaces take the same
// address on one network in the same instant. The older (creation time,
// then UID) wins; the other never gets a VM, and its message does not name
// the other namespace's profile.
func TestStaticAddressRace(t *testing.T) {
	nsA, nsB := newNamespace(t), newNamespace(t)
	vms := watchVMCreations(t)
	var wg sync.WaitGroup
	for _, ns := range []string{nsA, nsB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := profile("racer", ns, withStaticIP("10.77.0.5/24"))
			if err := cluster.Client.Create(context.Background(), p); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	a, b := getProfile(t, nsA, "racer"), getProfile(t, nsB, "racer")
	winner, loser := a, b
	if b.CreationTimestamp.Before(&a.CreationTimestamp) || (b.CreationTimestamp.Equal(&a.CreationTimestamp) && b.UID < a.UID) {
		winner, loser = b, a
	}
	t.Logf("created at %v and %v (same second: %v); winner %s", a.CreationTimestamp, b.CreationTimestamp,
		a.CreationTimestamp.Equal(&b.CreationTimestamp), winner.Namespace)
	waitForPhase(t, winner.Namespace, "racer", vmv1alpha1.PhaseRunning)
	p := waitForCondition(t, loser.Namespace, "racer", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonStaticIPConflict)
	message := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured)
	if strings.Contains(message, winner.Namespace) || message != "static address 10.77.0.5 is already used on the same network by an older profile in another namespace" {
		t.Fatalf("loser's message: %q", message)
	}
	time.Sleep(2 * time.Second)
	if created := vms.names(); len(created) != 1 || created[0] != winner.Namespace+"/racer-vm" {
		t.Fatalf("VMs ever created: %v, want only the winner's", created)
	}
}

// vmCreations records every VM created anywhere while a test runs.
type vmCreations struct {
	mu      sync.Mutex
	created []string
}

func (v *vmCreations) names() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.created...)
}

func watchVMCreations(t *testing.T) *vmCreations {
	t.Helper()
	watcher, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var list kubevirtv1.VirtualMachineList
	if err := cluster.Client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	events, err := watcher.Watch(context.Background(), &kubevirtv1.VirtualMachineList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(events.Stop)
	v := &vmCreations{}
	go func() {
		for event := range events.ResultChan() {
			if vm, ok := event.Object.(*kubevirtv1.VirtualMachine); ok && event.Type == watch.Added {
				v.mu.Lock()
				v.created = append(v.created, vm.Namespace+"/"+vm.Name)
				v.mu.Unlock()
			}
		}
	}()
	return v
}

// TestSegmentIsTheL2Domain: an address taken through a named attachment on
// br-mgmt VLAN 100 clashes with the same address through a generated
// attachment on the HostNetwork declaring br-mgmt, VLAN 100.
func TestSegmentIsTheL2Domain(t *testing.T) {
	ns := newNamespace(t)
	create(t, &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "mgmt-net", Namespace: ns},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-mgmt","vlan":100}`}})
	create(t, profile("named", ns, withStaticIP("10.88.0.5/24"), func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].NADName = "mgmt-net" }))
	waitForPhase(t, ns, "named", vmv1alpha1.PhaseRunning)
	time.Sleep(1100 * time.Millisecond) // a clearly younger profile
	create(t, profile("generated", ns, withStaticIP("10.88.0.5/24"), onBridgeVLAN("br-mgmt", 100)))
	p := waitForCondition(t, ns, "generated", vmv1alpha1.ConditionNetworksConfigured, metav1.ConditionFalse, vmv1alpha1.ReasonStaticIPConflict)
	if msg := conditionMessage(p, vmv1alpha1.ConditionNetworksConfigured); !strings.Contains(msg, "the older profile named") {
		t.Fatalf("same namespace: the message names the other profile: %q", msg)
	}
}

// recordDeletingConditions watches one HostNetwork and returns a function
// that lists every Deleting condition any of its versions carried.
func recordDeletingConditions(t *testing.T, name string) func() []metav1.Condition {
	t.Helper()
	watcher, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	events, err := watcher.Watch(context.Background(), &vmv1alpha1.HostNetworkList{}, client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(events.Stop)
	var mu sync.Mutex
	var seen []metav1.Condition
	go func() {
		for event := range events.ResultChan() {
			h, ok := event.Object.(*vmv1alpha1.HostNetwork)
			if !ok {
				continue
			}
			if deleting := meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionDeleting); deleting != nil {
				mu.Lock()
				seen = append(seen, *deleting)
				mu.Unlock()
			}
		}
	}()
	return func() []metav1.Condition {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}
