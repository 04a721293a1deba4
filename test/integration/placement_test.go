package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// zoneNodes adds nodes in a zone of their own (so other tests' VMs never
// land there) with the given capabilities, and removes them afterwards.
func zoneNodes(t *testing.T, zone string, capabilities map[string]vmv1alpha1.NodeCapabilityStatus) {
	t.Helper()
	for name, capability := range capabilities {
		if err := addNode(context.Background(), cluster.Client, name, map[string]string{"zone": zone}, capability); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cluster.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
			_ = cluster.Client.Delete(context.Background(), &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: name}})
		})
	}
}

func inZone(zone string) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{"zone": vmv1alpha1.LabelValue(zone)}}
	}
}

func onBridgeVLAN(bridge string, vlan int32) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.Networks[0].BridgeName = bridge
		p.Spec.Networks[0].VLANID = ptr.To(vlan)
	}
}

// trunk is a capability with br-mgmt trunking vlans on uplink eth1 (VLAN filtering on).
func trunk(vlans string, up bool) vmv1alpha1.NodeCapabilityStatus {
	c := fullCapability()
	c.Bridges = []vmv1alpha1.BridgeStatus{{Name: "br-mgmt", Up: up, VLANFiltering: true,
		Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true, VLANs: vlans}}}}
	return c
}

func nodeLabels(t *testing.T, name string) map[string]string {
	t.Helper()
	var node corev1.Node
	getObject(t, &node, "", name)
	return node.Labels
}

// TestPlacementFollowsCapabilities is the seed's VLAN 100 case: node-a of
// the zone trunks VLAN 100, node-b has the bridge without VLAN 100, node-c
// has no bridge. The VM lands on node-a; the status says why not the others.
func TestPlacementFollowsCapabilities(t *testing.T) {
	zoneNodes(t, "vlan-test", map[string]vmv1alpha1.NodeCapabilityStatus{
		"vlan-a": trunk("1,100", true),
		"vlan-b": trunk("200", true),
		"vlan-c": func() vmv1alpha1.NodeCapabilityStatus { c := fullCapability(); c.Bridges = nil; return c }(),
	})
	ns := newNamespace(t)
	create(t, profile("vlan100", ns, inZone("vlan-test"), onBridgeVLAN("br-mgmt", 100)))
	p := waitForPhase(t, ns, "vlan100", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "vlan-a" {
		t.Fatalf("placed on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	if got := observe.Exclusion(p, "vlan-b"); got != "VLAN 100 not allowed on uplink eth1" {
		t.Errorf("vlan-b: %q", got)
	}
	if got := observe.Exclusion(p, "vlan-c"); got != "bridge br-mgmt missing" {
		t.Errorf("vlan-c: %q", got)
	}
	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "vlan100-vm")
	terms := vm.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	var keys []string
	for _, e := range terms[0].MatchExpressions {
		keys = append(keys, e.Key)
	}
	want := []string{placement.HostNetworkLabel("mgmt"), vmv1alpha1.LabelKVM, vmv1alpha1.LabelReporting, placement.VLANLabel("br-mgmt", 100)}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("VM affinity on %v, want exactly %v", keys, want)
	}
	if nodeLabels(t, "vlan-a")[placement.VLANLabel("br-mgmt", 100)] != "true" || nodeLabels(t, "vlan-b")[placement.VLANLabel("br-mgmt", 100)] != "" {
		t.Fatal("VLAN labels do not follow the trunks")
	}
}

// TestBridgeDownExcludesTheNodeFromNewPlacementsOnly: a bridge going down
// excludes its node from new VMs at once (status says why), the running VM
// stays, the label goes only after the grace period, and the bridge coming
// back restores eligibility.
func TestBridgeDownExcludesTheNodeFromNewPlacementsOnly(t *testing.T) {
	ctx := context.Background()
	zoneNodes(t, "flap-test", map[string]vmv1alpha1.NodeCapabilityStatus{"flap-a": trunk("100", true)})
	ns := newNamespace(t)
	create(t, profile("first", ns, inZone("flap-test"), onBridgeVLAN("br-mgmt", 100)))
	waitForPhase(t, ns, "first", vmv1alpha1.PhaseRunning)
	var vmi kubevirtv1.VirtualMachineInstance
	getObject(t, &vmi, ns, "first-vm")

	start := time.Now()
	if err := report(ctx, cluster.Client, "flap-a", trunk("100", false)); err != nil {
		t.Fatal(err)
	}
	create(t, profile("second", ns, inZone("flap-test"), onBridgeVLAN("br-mgmt", 100)))
	p := waitForCondition(t, ns, "second", vmv1alpha1.ConditionScheduled, metav1.ConditionFalse, vmv1alpha1.ReasonNoEligibleNodes)
	if got := observe.Exclusion(p, "flap-a"); got != "bridge br-mgmt is down" || p.Status.Phase != vmv1alpha1.PhasePending {
		t.Fatalf("second: %q %s", got, observe.Describe(p))
	}
	t.Logf("bridge down → new profile excluded the node within %v", time.Since(start).Round(time.Millisecond))
	// br-mgmt is the declared network mgmt's bridge: the VMs' affinity
	// names the host network's label, which follows the bridge.
	if nodeLabels(t, "flap-a")[placement.HostNetworkLabel("mgmt")] != "true" {
		t.Fatal("the label went before its grace period")
	}
	observe.Eventually(t, 30*time.Second, "label removed after the grace period", func() (bool, string) {
		return nodeLabels(t, "flap-a")[placement.HostNetworkLabel("mgmt")] == "", fmt.Sprint(nodeLabels(t, "flap-a"))
	})
	var still kubevirtv1.VirtualMachineInstance
	getObject(t, &still, ns, "first-vm")
	if still.UID != vmi.UID || still.Status.Phase != kubevirtv1.Running || getProfile(t, ns, "first").Status.Phase != vmv1alpha1.PhaseRunning {
		t.Fatal("the running VM was disturbed")
	}
	if err := report(ctx, cluster.Client, "flap-a", trunk("100", true)); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "second", vmv1alpha1.PhaseRunning)
}

// TestSilentAgent: when a node's agent stops renewing its Lease, the node
// leaves new placements (its reporting label goes at expiry) but keeps its
// capability labels, so nothing flaps; a renewal brings it back.
func TestSilentAgent(t *testing.T) {
	ctx := context.Background()
	zoneNodes(t, "silent-test", map[string]vmv1alpha1.NodeCapabilityStatus{"silent-a": fullCapability()})
	if err := renewLease(ctx, cluster.Client, "silent-a", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "reporting label removed when the Lease expires", func() (bool, string) {
		labels := nodeLabels(t, "silent-a")
		// KVM: the capability label every node carries, asked for or not.
		return labels[vmv1alpha1.LabelReporting] == "" && labels[vmv1alpha1.LabelKVM] == "true", fmt.Sprint(labels)
	})
	ns := newNamespace(t)
	create(t, profile("waits", ns, inZone("silent-test")))
	p := waitForCondition(t, ns, "waits", vmv1alpha1.ConditionScheduled, metav1.ConditionFalse, vmv1alpha1.ReasonNoEligibleNodes)
	if got := observe.Exclusion(p, "silent-a"); got != "agent not reporting: its Lease expired" {
		t.Fatalf("silent-a: %q", got)
	}
	expectEvent(t, ns, "waits", vmv1alpha1.ReasonNoEligibleNodes)
	if getObject(t, &kubevirtv1.VirtualMachine{}, ns, "waits-vm") {
		t.Fatal("a VM was created although no node can host it")
	}
	if err := renewLease(ctx, cluster.Client, "silent-a", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "waits", vmv1alpha1.PhaseRunning)
}

// TestUnfilteredBridgeIsNotUsedForVLANs: an unmanaged bridge with
// allowedVLANs is used only where the agent reports vlan_filtering on it.
// The VM lands on the filtering node; the profile and the HostNetwork's
// problems say why not the other.
func TestUnfilteredBridgeIsNotUsedForVLANs(t *testing.T) {
	withOpenBridge := func(filtering bool) vmv1alpha1.NodeCapabilityStatus {
		c := fullCapability()
		port := vmv1alpha1.BridgePort{Name: "eth1", Up: true}
		if filtering {
			port.VLANs = "10"
		}
		c.Bridges = append(c.Bridges, vmv1alpha1.BridgeStatus{Name: "br-open", Up: true, VLANFiltering: filtering, Ports: []vmv1alpha1.BridgePort{port}})
		return c
	}
	zoneNodes(t, "filter-test", map[string]vmv1alpha1.NodeCapabilityStatus{
		"filter-a": withOpenBridge(true),
		"filter-b": withOpenBridge(false),
	})
	declare(t, "open", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-open", AllowedVLANs: []vmv1alpha1.VLANRange{"10"},
		NodeSelector: map[string]string{"zone": "filter-test"}, NamespaceSelector: metav1.LabelSelector{}})
	ns := newNamespace(t)
	create(t, profile("tenant10", ns, inZone("filter-test"), onBridgeVLAN("br-open", 10)))
	p := waitForPhase(t, ns, "tenant10", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "filter-a" {
		t.Fatalf("placed on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	const why = "bridge br-open does not filter VLANs (vlan_filtering off), so HostNetwork open's allowedVLANs cannot confine its VMs here"
	if got := observe.Exclusion(p, "filter-b"); got != why {
		t.Errorf("filter-b: %q, want %q", got, why)
	}
	observe.Eventually(t, time.Minute, "HostNetwork open names filter-b's problem", func() (bool, string) {
		var h vmv1alpha1.HostNetwork
		getObject(t, &h, "", "open")
		return h.Status.Ready == "1/2" && len(h.Status.Problems) == 1 && h.Status.Problems[0].Node == "filter-b" && h.Status.Problems[0].Message == why,
			fmt.Sprintf("%+v", h.Status)
	})
}
