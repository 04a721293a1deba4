package placement

import (
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestExclusionsDoNotMoveWithTheClock: how long a node's agent has been
// silent is not in its exclusion reason, so a profile's status, written
// only when it changes, is not rewritten while nothing happens.
func TestExclusionsDoNotMoveWithTheClock(t *testing.T) {
	p := seedProfile()
	var first vmv1alpha1.PlacementStatus
	for i, silent := range []time.Duration{time.Second, 37 * time.Second, 3 * time.Hour} {
		nodes := []Node{
			{Name: "silent", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("ens1f0", 4, 0)), SilentFor: silent},
			{Name: "never-reported", SilentFor: silent},
		}
		got := Evaluate(p, needsOf(t, p), nodes, Options{}).Status
		if i == 0 {
			first = got
			continue
		}
		if !apiequality.Semantic.DeepEqual(got, first) {
			t.Errorf("silent for %v: %+v\nsilent for 1s:  %+v", silent, got, first)
		}
	}
}

// TestATruncatedReportIsNamedInTheReason: when the agent had to cut its
// report to keep within the NodeCapability's size bound, a requirement it
// does not show may be among what was cut, and the reason says so rather
// than only "missing"; a node offering everything is not affected.
func TestATruncatedReportIsNamedInTheReason(t *testing.T) {
	const cut = "left out to keep this status within 983040 bytes: the last 812 of 4095 bridges (br-eth1-3284 to br-trunk)"
	truncated := func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Conditions = append(c.Conditions, metav1.Condition{Type: vmv1alpha1.ConditionTruncated, Status: metav1.ConditionTrue,
			Reason: vmv1alpha1.ReasonSizeBoundExceeded, Message: cut})
	}
	nodes := []Node{
		{Name: "cut", Capability: capability(withPF("ens1f0", 4, 0), truncated)},
		{Name: "cut-but-enough", Capability: capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("ens1f0", 4, 0), truncated)},
		{Name: "whole", Capability: capability(withPF("ens1f0", 4, 0))},
	}
	result := Evaluate(seedProfile(), needsOf(t, seedProfile()), nodes, Options{})
	want := map[string]string{
		"cut":   "bridge br-mgmt missing; the agent's report is truncated: " + cut,
		"whole": "bridge br-mgmt missing",
	}
	if len(result.Eligible) != 1 || result.Eligible[0] != "cut-but-enough" || len(result.Status.Excluded) != len(want) {
		t.Fatalf("eligible %v, excluded %+v", result.Eligible, result.Status.Excluded)
	}
	for _, e := range result.Status.Excluded {
		if e.Reason != want[e.Node] {
			t.Errorf("%s: %q\nwant %q", e.Node, e.Reason, want[e.Node])
		}
	}
}
