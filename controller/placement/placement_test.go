package placement

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
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

func TestRequirements(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = append(p.Spec.Networks,
		vmv1alpha1.NetworkConfig{Name: "edge", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-edge", Uplink: "bond0", VLANID: ptr.To[int32](300)},
		vmv1alpha1.NetworkConfig{Name: "stor", Type: vmv1alpha1.NetworkTypeMacvlan, Uplink: "eth2"},
		vmv1alpha1.NetworkConfig{Name: "ovs", Type: vmv1alpha1.NetworkTypeOVS, BridgeName: "br-int"},
		vmv1alpha1.NetworkConfig{Name: "ext", Type: vmv1alpha1.NetworkTypeBridge, NADName: "corp"},
	)
	var got []string
	for _, r := range Requirements(p) {
		got = append(got, r.Label)
	}
	want := []string{LabelKVM, BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), LabelSRIOV,
		PolicyLabel("vmop-br-edge"), LinkLabel("eth2"), OVSLabel("br-int")}
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
	result := Evaluate(seedProfile(), nodes, Options{})
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
	for _, label := range []string{LabelReporting, LabelKVM, BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), LabelSRIOV} {
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
	result := Evaluate(p, nodes, Options{})
	if result.Status.EligibleNodes != 5 || result.Status.ExcludedNodes != 20 || len(result.Status.Excluded) != MaxExcludedListed {
		t.Fatalf("%+v", result.Status)
	}
	if result.Status.Excluded[0].Reason != "does not match highAvailability.nodeSelector" {
		t.Fatalf("reason: %q", result.Status.Excluded[0].Reason)
	}
}

func TestPolicyRequirement(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = []vmv1alpha1.NetworkConfig{{Name: "edge", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-edge", Uplink: "bond0", VLANID: ptr.To[int32](300)}}
	result := Evaluate(p, []Node{
		{Name: "ok", Capability: capability(withPolicy("vmop-br-edge", true, ""))},
		{Name: "drift", Capability: capability(withPolicy("vmop-br-edge", false, "nmstate reports Available but bridge br-edge does not exist"))},
		{Name: "none", Capability: capability()},
	}, Options{})
	if strings.Join(result.Eligible, ",") != "ok" {
		t.Fatalf("eligible %v", result.Eligible)
	}
	if r := result.Status.Excluded[0]; r.Node != "drift" || !strings.Contains(r.Reason, "bridge br-edge does not exist") {
		t.Fatalf("%+v", result.Status.Excluded)
	}
}

func TestNodeLabelsFollowTheSameRules(t *testing.T) {
	c := capability(withBridge("br-mgmt", true, "eth1", "100"), withBridge("br-down", false, "eth2", ""), withPF("ens1f0", 4, 4),
		withPolicy("vmop-br-edge", true, ""), withPolicy("vmop-br-bad", false, "missing"))
	wanted := map[string]Requirement{}
	for _, vlan := range []int32{100, 200} {
		r := Requirement{Label: VLANLabel("br-mgmt", vlan), Kind: NeedVLAN, Name: "br-mgmt", VLAN: vlan}
		wanted[r.Label] = r
	}
	got := NodeLabels(c, wanted)
	for _, want := range []string{LabelKVM, BridgeLabel("br-mgmt"), VLANLabel("br-mgmt", 100), LinkLabel("eth1"), PolicyLabel("vmop-br-edge")} {
		if got[want] != "true" {
			t.Errorf("missing %s in %v", want, got)
		}
	}
	for _, absent := range []string{BridgeLabel("br-down"), VLANLabel("br-mgmt", 200), LabelSRIOV, PolicyLabel("vmop-br-bad")} {
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

func TestAllowEmulationDropsOnlyTheKVMRequirement(t *testing.T) {
	p := seedProfile()
	p.Spec.Networks = nil
	nodes := []Node{{Name: "no-kvm", Capability: capability(withoutKVM("/dev/kvm does not exist"))}}
	if got := Evaluate(p, nodes, Options{}); got.Status.EligibleNodes != 0 {
		t.Fatalf("without emulation a node without KVM must be excluded: %+v", got.Status)
	}
	got := Evaluate(p, nodes, Options{AllowEmulation: true})
	if got.Status.EligibleNodes != 1 || got.Placement.RequiredNodeLabels[LabelKVM] != "" {
		t.Fatalf("with emulation: %+v %v", got.Status, got.Placement.RequiredNodeLabels)
	}
}
