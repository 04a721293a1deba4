package placement

import (
	"strings"
	"testing"
	"time"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestExplainGivesEachExcludedNodeAFix: Explain agrees with Evaluate on
// every node's reason, and each excluded node says what to change.
func TestExplainGivesEachExcludedNodeAFix(t *testing.T) {
	nodes := []Node{
		{Name: "node-a", Capability: capability(withBridge("br-mgmt", true, "eth1", "1,100-110"), withPF("ens1f0", 4, 1))},
		{Name: "node-b", Capability: capability(withBridge("br-mgmt", false, "eth1", "100"), withPF("ens1f0", 4, 0))},
		{Name: "node-c", Capability: capability(withBridge("br-mgmt", true, "eth1", "200"), withPF("ens1f0", 4, 0))},
		{Name: "node-d", Capability: capability(withBridge("br-mgmt", true, "eth1", "100")), SilentFor: 2 * time.Minute},
		{Name: "node-e", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("ens1f0", 4, 4))},
		{Name: "node-f", Capability: capability(withoutKVM("/dev/kvm: no such file"))},
		{Name: "node-h"},
		{Name: "node-j", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("p0", 2, 0)), Unschedulable: true},
		{Name: "node-k", Labels: map[string]string{"zone": "b"}, Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("p0", 2, 0))},
	}
	profile := seedProfile()
	profile.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{"zone": "a"}}
	for i := range nodes {
		if nodes[i].Labels == nil {
			nodes[i].Labels = map[string]string{"zone": "a"}
		}
	}
	needs := needsOf(t, profile)
	verdicts := Explain(profile, needs, nodes, Options{})
	wantFix := map[string]string{
		"node-b": "create Linux bridge br-mgmt on node-b and bring it up",
		"node-c": "allow VLAN 100 on bridge br-mgmt's uplink port on node-c (bridge vlan add vid 100 dev <uplink>)",
		"node-d": "the vmop-agent on node-d stopped renewing its Lease",
		"node-e": "free or add SR-IOV VFs on node-e",
		"node-f": "give node-f KVM",
		"node-h": "run vmop-agent on node-h",
		"node-j": "kubectl uncordon node-j",
		"node-k": "kubectl label node node-k zone=a, or change the profile's spec.highAvailability.nodeSelector",
	}
	result := Evaluate(profile, needs, nodes, Options{})
	reasons := map[string]string{}
	for _, e := range result.Status.Excluded {
		reasons[e.Node] = e.Reason
	}
	for _, v := range verdicts {
		if v.Node == "node-a" {
			if !v.Eligible || v.Reason != "" || v.Fix != "" {
				t.Errorf("node-a: %+v, want eligible", v)
			}
			continue
		}
		if v.Eligible || reasons[v.Node] != v.Reason {
			t.Errorf("%s: verdict %+v, Evaluate says %q", v.Node, v, reasons[v.Node])
		}
		if !strings.HasPrefix(v.Fix, wantFix[v.Node]) {
			t.Errorf("%s: fix %q, want it to start with %q", v.Node, v.Fix, wantFix[v.Node])
		}
	}
	// Emulation drops KVM: node-f then fails on its missing bridge, and the
	// caller's needs are left as they were.
	before := len(needs)
	for _, v := range Explain(profile, needs, nodes, Options{AllowEmulation: true}) {
		if v.Node == "node-f" && v.Reason != "bridge br-mgmt missing" {
			t.Errorf("node-f with emulation: %+v", v)
		}
	}
	if len(needs) != before || needs[0].Kind != NeedKVM {
		t.Errorf("Explain changed the caller's needs: %+v", needs)
	}
}

// TestFixOfAHostNetwork: a declared network's remedy follows what the node
// lacks: a policy that did not take, a policy that does not cover the
// node, the bridge, or VLAN filtering on an unmanaged bridge.
func TestFixOfAHostNetwork(t *testing.T) {
	managed := &HostNetworkOffer{Name: "edge", Type: vmv1alpha1.NetworkTypeBridge, Managed: true, Policies: []string{"vmop-edge"}, Bridge: "br-edge"}
	unmanaged := &HostNetworkOffer{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-lan", VLANFiltering: true}
	for _, c := range []struct {
		name  string
		node  Node
		offer *HostNetworkOffer
		want  string
	}{
		{"policy failed", Node{Name: "n1", Capability: capability(withPolicy("vmop-edge", false, "bond0 missing"))}, managed,
			"see why HostNetwork edge's policy did not take on n1: kubectl get hostnetwork edge -o yaml"},
		{"no policy here", Node{Name: "n2", Capability: capability()}, managed,
			"HostNetwork edge builds nothing on n2: add an uplink (or nodeSelector) that covers the node"},
		{"bridge missing", Node{Name: "n3", Capability: capability()}, unmanaged,
			"create Linux bridge br-lan on n3 and bring it up"},
		{"no VLAN filtering", Node{Name: "n4", Capability: capability(withBridge("br-lan", true, "eth1", ""))}, unmanaged,
			"turn on VLAN filtering on bridge br-lan on n4 (ip link set br-lan type bridge vlan_filtering 1)"},
	} {
		need := Requirement{Kind: NeedHostNetwork, Name: c.offer.Name, HostNetwork: c.offer}
		if ok, _ := Offers(c.node.Capability, need); ok {
			t.Fatalf("%s: the node offers %s", c.name, c.offer.Name)
		}
		if got := fixRequirement(&c.node, need); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want it to start with %q", c.name, got, c.want)
		}
	}
}
