package placement

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// capability builds a NodeCapabilityStatus; options add what the node has.
func capability(options ...func(*vmv1alpha1.NodeCapabilityStatus)) *vmv1alpha1.NodeCapabilityStatus {
	c := &vmv1alpha1.NodeCapabilityStatus{KVM: &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}}
	for _, option := range options {
		option(c)
	}
	return c
}

func withoutKVM(reason string) func(*vmv1alpha1.NodeCapabilityStatus) {
	return func(c *vmv1alpha1.NodeCapabilityStatus) { c.KVM = &vmv1alpha1.KVMStatus{Reason: reason} }
}

func withBridge(name string, up bool, uplink, vlans string) func(*vmv1alpha1.NodeCapabilityStatus) {
	return func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Bridges = append(c.Bridges, vmv1alpha1.BridgeStatus{Name: name, Up: up, VLANFiltering: vlans != "",
			Ports: []vmv1alpha1.BridgePort{{Name: uplink, Up: true, VLANs: vlans}, {Name: "veth0123", Up: true, VLANs: "100"}}})
		c.Uplinks = append(c.Uplinks, vmv1alpha1.UplinkStatus{Name: uplink, Up: true, Carrier: true})
	}
}

func withPF(name string, numVFs, inUse int32) func(*vmv1alpha1.NodeCapabilityStatus) {
	return func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.SRIOV = append(c.SRIOV, vmv1alpha1.SRIOVPF{Name: name, PCIAddress: "0000:3b:00.0", TotalVFs: 8, NumVFs: numVFs, VFsInUse: inUse, LinkUp: true})
	}
}

func withPolicy(name string, verified bool, message string) func(*vmv1alpha1.NodeCapabilityStatus) {
	return func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Policies = append(c.Policies, vmv1alpha1.PolicyVerification{Name: name, Verified: verified, Message: message})
	}
}

// seedProfile is the request's test sample plus the full example's SR-IOV network.
func seedProfile() *vmv1alpha1.VirtualMachineProfile {
	return &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "test-vm", Namespace: "default"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 2, Memory: "4Gi", Networks: []vmv1alpha1.NetworkConfig{
			{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, VLANID: ptr.To[int32](100)},
			{Name: "business", Type: vmv1alpha1.NetworkTypeSRIOV, VLANID: ptr.To[int32](200)},
		}},
	}
}

// needsOf resolves a profile's networks (undeclared ones allowed, as on a
// single-tenant cluster, unless HostNetworks are given) and lists its requirements.
func needsOf(t testing.TB, p *vmv1alpha1.VirtualMachineProfile, hostNetworks ...vmv1alpha1.HostNetwork) []Requirement {
	t.Helper()
	attachments, refusal := attach.Resolve(p, attach.Inputs{HostNetworks: hostNetworks, Policy: attach.Policy{AllowUndeclared: true, DefaultSRIOVResource: "intel.com/sriov"}})
	if refusal != nil {
		t.Fatalf("refused: %+v", refusal)
	}
	return Requirements(attachments)
}

func managedBridge(name, bridge string, selector map[string]string) vmv1alpha1.HostNetwork {
	return vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: bridge,
		Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "bond0"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"300"}, NodeSelector: selector}}
}

func TestRequirements(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = append(p.Spec.Networks,
		vmv1alpha1.NetworkConfig{Name: "edge", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-edge", VLANID: ptr.To[int32](300)},
		vmv1alpha1.NetworkConfig{Name: "ovs", Type: vmv1alpha1.NetworkTypeOVS, BridgeName: "br-int"},
		vmv1alpha1.NetworkConfig{Name: "ext", Type: vmv1alpha1.NetworkTypeBridge, NADName: "corp"},
	)
	var got []string
	for _, r := range needsOf(t, p, managedBridge("edge", "br-edge", map[string]string{"zone": "dmz"})) {
		if r.Kind == NeedNodeLabels {
			got = append(got, fmt.Sprintf("selector%v", r.Selector))
			continue
		}
		got = append(got, r.Label)
	}
	want := []string{vmv1alpha1.LabelKVM, BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), vmv1alpha1.LabelSRIOV,
		HostNetworkLabel("edge"), "selectormap[zone:dmz]", VLANLabel("br-edge", 300), OVSLabel("br-int")}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestEvaluateExplainsEveryExcludedNode(t *testing.T) {
	nodes := []Node{
		{Name: "node-a", Capability: capability(withBridge("br-mgmt", true, "eth1", "1,100-110"), withPF("ens1f0", 4, 1))},
		{Name: "node-b", Capability: capability(withBridge("br-mgmt", false, "eth1", "100"), withPF("ens1f0", 4, 0))},
		{Name: "node-c", Capability: capability(withBridge("br-mgmt", true, "eth1", "200"), withPF("ens1f0", 4, 0))},
		{Name: "node-d", Capability: capability(withBridge("br-mgmt", true, "eth1", "100")), SilentFor: 2 * time.Minute},
		{Name: "node-e", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("ens1f0", 4, 4))},
		{Name: "node-f", Capability: capability(withoutKVM("/dev/kvm: no such file"))},
		{Name: "node-g", Capability: capability(withPF("ens1f0", 4, 0))},
		{Name: "node-h"},
		{Name: "node-i", Capability: capability(withBridge("br-mgmt", true, "eth1", ""), withPF("ens1f0", 2, 0))},
		{Name: "node-j", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("p0", 2, 0)), Unschedulable: true},
	}
	result := Evaluate(seedProfile(), needsOf(t, seedProfile()), nodes, Options{})
	if strings.Join(result.Eligible, ",") != "node-a,node-i" {
		t.Fatalf("eligible: %v", result.Eligible)
	}
	want := map[string]string{
		"node-b": "bridge br-mgmt is down",
		"node-c": "VLAN 100 not allowed on uplink eth1",
		"node-d": "agent not reporting: its Lease expired",
		"node-e": "no free VFs on ens1f0",
		"node-f": "KVM unavailable: /dev/kvm: no such file",
		"node-g": "bridge br-mgmt missing",
		"node-h": "no NodeCapability: the vmop-agent has not reported",
		"node-j": "node is cordoned",
	}
	if int(result.Status.ExcludedNodes) != len(want) || int(result.Status.EligibleNodes) != 2 {
		t.Fatalf("counts: %+v", result.Status)
	}
	for _, e := range result.Status.Excluded {
		if want[e.Node] != e.Reason {
			t.Errorf("%s: %q, want %q", e.Node, e.Reason, want[e.Node])
		}
	}
	for _, label := range []string{vmv1alpha1.LabelReporting, vmv1alpha1.LabelKVM, BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), vmv1alpha1.LabelSRIOV} {
		if result.Placement.RequiredNodeLabels[label] != "true" {
			t.Errorf("VM affinity lacks %s: %v", label, result.Placement.RequiredNodeLabels)
		}
	}
}

func TestEvaluateBoundsTheListAndHonoursTheSelector(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = nil
	p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{"rack": "r1"}}
	var nodes []Node
	for i := range 25 {
		rack := "r2"
		if i%5 == 0 {
			rack = "r1"
		}
		nodes = append(nodes, Node{Name: fmt.Sprintf("n%02d", i), Labels: map[string]string{"rack": rack}, Capability: capability()})
	}
	result := Evaluate(p, needsOf(t, p), nodes, Options{})
	if result.Status.EligibleNodes != 5 || result.Status.ExcludedNodes != 20 || len(result.Status.Excluded) != MaxExcludedListed {
		t.Fatalf("%+v", result.Status)
	}
	if result.Status.Excluded[0].Reason != "does not match highAvailability.nodeSelector" {
		t.Fatalf("reason: %q", result.Status.Excluded[0].Reason)
	}
}

// TestManagedHostNetworkRequirement: a managed network is offered where
// its agent verified its policy, and only on the nodes it selects.
func TestManagedHostNetworkRequirement(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = []vmv1alpha1.NetworkConfig{{Name: "edge", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-edge", VLANID: ptr.To[int32](300)}}
	dmz := map[string]string{"zone": "dmz"}
	needs := needsOf(t, p, managedBridge("edge", "br-edge", dmz))
	built := withBridge("br-edge", true, "bond0", "300")
	result := Evaluate(p, needs, []Node{
		{Name: "ok", Labels: dmz, Capability: capability(built, withPolicy("vmop-edge", true, ""))},
		{Name: "drift", Labels: dmz, Capability: capability(built, withPolicy("vmop-edge", false, "nmstate reports Available but bridge br-edge does not exist"))},
		{Name: "none", Labels: dmz, Capability: capability(built)},
		{Name: "elsewhere", Capability: capability(built, withPolicy("vmop-edge", true, ""))},
	}, Options{})
	if strings.Join(result.Eligible, ",") != "ok" {
		t.Fatalf("eligible %v", result.Eligible)
	}
	want := map[string]string{
		"drift":     "HostNetwork edge not verified: policy vmop-edge: nmstate reports Available but bridge br-edge does not exist",
		"none":      "HostNetwork edge not built here: no policy of it applies to this node",
		"elsewhere": "HostNetwork edge does not select this node (its nodeSelector)",
	}
	for _, e := range result.Status.Excluded {
		if want[e.Node] != e.Reason {
			t.Errorf("%s: %q, want %q", e.Node, e.Reason, want[e.Node])
		}
	}
	if result.Placement.RequiredNodeLabels["zone"] != "dmz" || result.Placement.RequiredNodeLabels[HostNetworkLabel("edge")] != "true" {
		t.Fatalf("VM affinity: %v", result.Placement.RequiredNodeLabels)
	}
}

// TestFailedProbeExcludesWhatDependsOnIt: a node whose agent could not dump
// its links is not trusted for bridges, whatever its stale report shows;
// it still hosts VMs that need no link.
func TestFailedProbeExcludesWhatDependsOnIt(t *testing.T) {
	failed := func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Conditions = append(c.Conditions, metav1.Condition{Type: vmv1alpha1.ConditionLinksProbed, Status: metav1.ConditionFalse,
			Reason: vmv1alpha1.ReasonProbeFailed, Message: "listing links: netlink: resource temporarily unavailable"})
	}
	node := Node{Name: "stale", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("ens1f0", 4, 0), failed)}
	result := Evaluate(seedProfile(), needsOf(t, seedProfile()), []Node{node}, Options{})
	if got := result.Status.Excluded[0].Reason; got != "the agent's link probe failed: listing links: netlink: resource temporarily unavailable" {
		t.Fatalf("reason %q", got)
	}
	plain := seedProfile()
	plain.Spec.Networks = nil
	if got := Evaluate(plain, needsOf(t, plain), []Node{node}, Options{}); got.Status.EligibleNodes != 1 {
		t.Fatalf("a VM without networks does not depend on the link probe: %+v", got.Status)
	}
	// The node's labels say the same, or the scheduler would place a VM
	// where its status says it cannot run (FuzzNodeLabels found it).
	labels := NodeLabels(node.Capability, WantedVLANs(needsOf(t, seedProfile())), nil)
	for _, stale := range []string{BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), LinkLabel("eth1")} {
		if _, ok := labels[stale]; ok {
			t.Errorf("%s is labelled from the failed link probe's stale report", stale)
		}
	}
	if labels[vmv1alpha1.LabelKVM] != "true" || labels[vmv1alpha1.LabelSRIOV] != "true" {
		t.Errorf("what the other probes found stays labelled: %v", labels)
	}
}

// TestARequirementNoLabelCanNameIsOfferedNowhere: a bridge named br0- is a
// Linux name but no label key can end in '-', so no node can carry the
// label the VM's affinity requires: no node is eligible, and the reason
// says why (FuzzNodeLabels found it eligible everywhere it was up).
func TestARequirementNoLabelCanNameIsOfferedNowhere(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = []vmv1alpha1.NetworkConfig{{Name: "odd", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br0-"}}
	c := capability(withBridge("br0-", true, "eth1", ""))
	result := Evaluate(p, needsOf(t, p), []Node{{Name: "node-a", Capability: c}}, Options{})
	want := "no node can carry the label " + BridgeLabel("br0-") + ": it is not a valid label key"
	if result.Status.EligibleNodes != 0 || len(result.Status.Excluded) != 1 || result.Status.Excluded[0].Reason != want {
		t.Fatalf("want node-a excluded with %q, got %+v", want, result.Status)
	}
	if _, ok := NodeLabels(c, nil, nil)[BridgeLabel("br0-")]; ok {
		t.Fatal("an invalid label key was projected")
	}
}

func TestNodeLabelsFollowTheSameRules(t *testing.T) {
	c := capability(withBridge("br-mgmt", true, "eth1", "100"), withBridge("br-down", false, "eth2", ""), withPF("ens1f0", 4, 4),
		withBridge("br-edge", true, "bond0", "300"), withPolicy("vmop-edge", true, ""), withPolicy("vmop-bad", false, "missing"))
	wanted := []Requirement{
		{Label: BridgeLabel("br-mgmt"), Kind: NeedBridge, Name: "br-mgmt"},
		{Label: BridgeLabel("br-down"), Kind: NeedBridge, Name: "br-down"},
		{Label: LinkLabel("eth1"), Kind: NeedLink, Name: "eth1"},
		{Label: vmv1alpha1.LabelKVM, Kind: NeedKVM}, // not on demand: projected anyway, never twice
	}
	for _, vlan := range []int32{100, 200} {
		wanted = append(wanted, Requirement{Label: VLANLabel("br-mgmt", vlan), Kind: NeedVLAN, Name: "br-mgmt", VLAN: vlan})
	}
	edge, bad := managedBridge("edge", "br-edge", nil), managedBridge("bad", "br-bad", nil)
	got := NodeLabels(c, wanted, []HostNetworkOffer{OfferOf(&edge), OfferOf(&bad)})
	for _, want := range []string{vmv1alpha1.LabelKVM, BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), LinkLabel("eth1"), HostNetworkLabel("edge")} {
		if got[want] != "true" {
			t.Errorf("missing %s in %v", want, got)
		}
	}
	// br-edge, eth2 and bond0 are up, but no profile asks for them.
	for _, absent := range []string{BridgeLabel("br-down"), VLANLabel("br-mgmt", 200), vmv1alpha1.LabelSRIOV, HostNetworkLabel("bad"),
		BridgeLabel("br-edge"), LinkLabel("eth2"), LinkLabel("bond0")} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s should not be set", absent)
		}
	}
	for key := range got {
		if !Owned(key) {
			t.Errorf("label %s outside the controller's prefix", key)
		}
	}
}

// TestNodeLabelsOnlyForWhatIsAsked: a node with a bridge for each of the
// 4,094 VLANs, its VLAN interface as the port, three NICs and two OVS
// bridges carries the labels profiles ask for and the few fixed ones, not
// one per bridge, NIC and VLAN interface (8,000 labels on the Node, each a
// key the node-label admission policy iterates).
func TestNodeLabelsOnlyForWhatIsAsked(t *testing.T) {
	c := capability(withPF("ens1f0", 8, 0))
	for id := 2; id <= 4095; id++ {
		bridge, vlan := fmt.Sprintf("br-vlan%d", id), fmt.Sprintf("eth1.%d", id)
		c.Bridges = append(c.Bridges, vmv1alpha1.BridgeStatus{Name: bridge, Up: true, Ports: []vmv1alpha1.BridgePort{{Name: vlan, Up: true}}})
		c.VLANs = append(c.VLANs, vmv1alpha1.VLANInterface{Name: vlan, ID: int32(id), Parent: "eth1", Up: true})
	}
	for _, nic := range []string{"eth0", "eth1", "eth2"} {
		c.Uplinks = append(c.Uplinks, vmv1alpha1.UplinkStatus{Name: nic, Up: true, Carrier: true})
	}
	c.OVSBridges = []vmv1alpha1.OVSBridgeStatus{{Name: "br-int", Up: true}, {Name: "br-ex", Up: true}}
	p := seedProfile()
	p.Spec.Networks = []vmv1alpha1.NetworkConfig{
		{Name: "a", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-vlan100"},
		{Name: "b", Type: vmv1alpha1.NetworkTypeOVS, BridgeName: "br-int"},
	}
	x := NewIndex()
	x.Set(types.NamespacedName{Namespace: "ns", Name: "p"}, needsOf(t, p), nil)
	got := NodeLabels(c, x.Wanted(), nil)
	want := map[string]string{vmv1alpha1.LabelKVM: "true", vmv1alpha1.LabelSRIOV: "true", BridgeLabel("br-vlan100"): "true", OVSLabel("br-int"): "true"}
	if !maps.Equal(got, want) {
		t.Errorf("labels %v\nwant   %v", got, want)
	}
	if none := NodeLabels(c, nil, nil); len(none) != 2 {
		t.Errorf("with no profile, only KVM and SR-IOV: %v", none)
	}
}

func TestAllowEmulationDropsOnlyTheKVMRequirement(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = nil
	nodes := []Node{{Name: "no-kvm", Capability: capability(withoutKVM("/dev/kvm does not exist"))}}
	if got := Evaluate(p, needsOf(t, p), nodes, Options{}); got.Status.EligibleNodes != 0 {
		t.Fatalf("without emulation a node without KVM must be excluded: %+v", got.Status)
	}
	got := Evaluate(p, needsOf(t, p), nodes, Options{AllowEmulation: true})
	if got.Status.EligibleNodes != 1 || got.Placement.RequiredNodeLabels[vmv1alpha1.LabelKVM] != "" {
		t.Fatalf("with emulation: %+v %v", got.Status, got.Placement.RequiredNodeLabels)
	}
}

func TestIndex(t *testing.T) {
	x := NewIndex()
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	vlan100 := Requirement{Label: VLANLabel("br-mgmt", 100), Kind: NeedVLAN, Name: "br-mgmt", VLAN: 100}
	bridge := Requirement{Label: BridgeLabel("br-mgmt"), Kind: NeedBridge, Name: "br-mgmt"}
	x.Set(a, []Requirement{{Label: vmv1alpha1.LabelKVM}, bridge, vlan100, {Kind: NeedNodeLabels, Selector: map[string]string{"zone": "dmz"}}}, []string{"rack"})
	x.Set(b, []Requirement{{Label: vmv1alpha1.LabelKVM}, vlan100}, nil)
	select {
	case <-x.WantedChanged():
	default:
		t.Fatal("a newly wanted label must be signalled")
	}
	if got := x.Wanted(); len(got) != 2 || got[0].Label != bridge.Label || got[1].Label != vlan100.Label {
		t.Fatalf("wanted: %+v, want the bridge and the VLAN, not KVM", got)
	}
	if got := x.Profiles(vmv1alpha1.LabelKVM); len(got) != 2 {
		t.Fatalf("kvm: %v", got)
	}
	if got := x.Profiles("zone"); len(got) != 1 || got[0] != a {
		t.Fatalf("a HostNetwork's selector key: %v", got)
	}
	if got := x.Profiles("rack"); len(got) != 1 || got[0] != a {
		t.Fatalf("the profile's own selector key: %v", got)
	}
	x.Delete(a)
	if got := x.Wanted(); len(got) != 1 || got[0].Label != vlan100.Label {
		t.Fatalf("b still wants VLAN 100, and nothing else: %+v", got)
	}
	select {
	case <-x.WantedChanged():
	default:
		t.Fatal("the bridge no longer wanted must be signalled")
	}
	x.Set(b, []Requirement{{Label: vmv1alpha1.LabelKVM}, vlan100}, nil)
	select {
	case <-x.WantedChanged():
		t.Fatal("no change in wanted labels: no signal")
	default:
	}
	x.Set(b, []Requirement{{Label: vmv1alpha1.LabelKVM}}, nil)
	if len(x.Wanted()) != 0 || len(x.Profiles("zone")) != 0 {
		t.Fatalf("nothing wanted any more: %v", x.Wanted())
	}
	select {
	case <-x.WantedChanged():
	default:
		t.Fatal("a VLAN no longer wanted must be signalled")
	}
}

// TestNamedMacvlanNeedsItsMaster: a generated macvlan attachment on a
// managed network relies on the policy to build its master; a named one on
// the same network names its own master, which a node must have.
func TestNamedMacvlanNeedsItsMaster(t *testing.T) {
	h := vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "storage"},
		Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeMacvlan, Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth2"}}}}
	for _, named := range []bool{false, true} {
		a := desired.Attachment{Type: vmv1alpha1.NetworkTypeMacvlan, Declared: &h, Master: "eth2.310", VLAN: 310, Named: named}
		got := slices.ContainsFunc(Requirements([]desired.Attachment{a}), func(r Requirement) bool {
			return r.Kind == NeedLink && r.Name == "eth2.310" && r.Label == LinkLabel("eth2.310")
		})
		if got != named {
			t.Errorf("named=%v: needs the link %v, want %v", named, got, named)
		}
	}
}

// TestUnmanagedBridgeWithVLANsMustFilter: an unmanaged bridge with
// allowedVLANs is offered only where its agent reports vlan_filtering on
// that bridge: without it every VM on the bridge sees every VLAN of the
// uplink. Each other node says why; the node label follows the same rule.
// Without allowedVLANs a non-filtering bridge still serves.
func TestUnmanagedBridgeWithVLANsMustFilter(t *testing.T) {
	trunk := vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "trunk"}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-trunk",
		AllowedVLANs: []vmv1alpha1.VLANRange{"300"}}}
	plain := vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-plain"}}
	p := seedProfile()
	p.Spec.Networks = []vmv1alpha1.NetworkConfig{{Name: "t", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-trunk", VLANID: ptr.To[int32](300)}}
	needs := needsOf(t, p, trunk)
	filtering := capability(withBridge("br-trunk", true, "eth1", "300"))
	open := capability(withBridge("br-trunk", true, "eth1", ""))
	result := Evaluate(p, needs, []Node{{Name: "filtering", Capability: filtering}, {Name: "open", Capability: open}}, Options{})
	if strings.Join(result.Eligible, ",") != "filtering" {
		t.Fatalf("eligible %v", result.Eligible)
	}
	want := "bridge br-trunk does not filter VLANs (vlan_filtering off), so HostNetwork trunk's allowedVLANs cannot confine its VMs here"
	if len(result.Status.Excluded) != 1 || result.Status.Excluded[0].Node != "open" || result.Status.Excluded[0].Reason != want {
		t.Fatalf("excluded %+v, want open: %q", result.Status.Excluded, want)
	}
	offers := []HostNetworkOffer{OfferOf(&trunk), OfferOf(&plain)}
	if got := NodeLabels(filtering, nil, offers)[HostNetworkLabel("trunk")]; got != "true" {
		t.Fatalf("filtering node: hostnetwork label %q", got)
	}
	if got, ok := NodeLabels(open, nil, offers)[HostNetworkLabel("trunk")]; ok {
		t.Fatalf("non-filtering node carries the trunk label %q", got)
	}
	plainNode := capability(withBridge("br-plain", true, "eth2", ""))
	if got := NodeLabels(plainNode, nil, offers)[HostNetworkLabel("plain")]; got != "true" {
		t.Fatalf("a bridge without allowedVLANs needs no filtering: label %q", got)
	}
	managed := managedBridge("edge", "br-edge", nil)
	if OfferOf(&managed).VLANFiltering {
		t.Fatal("a managed bridge gets filtering from its verified policy; the offer must not ask for it twice")
	}
}
