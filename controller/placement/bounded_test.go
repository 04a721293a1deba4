package placement

import (
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestExclusionReasonsAreCut: an agent's longest words (a kvm.reason at
// its CRD bound, a failed probe's condition message at metav1.Condition's
// bound) reach the profile's status as 256 characters, cut at a character
// boundary with an ellipsis; a short reason is left as it is.
func TestExclusionReasonsAreCut(t *testing.T) {
	longReason := strings.Repeat("ü", vmv1alpha1.MaxAgentMessageLength)
	probeFailed := func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Conditions = append(c.Conditions, metav1.Condition{Type: vmv1alpha1.ConditionLinksProbed, Status: metav1.ConditionFalse,
			Reason: vmv1alpha1.ReasonProbeFailed, Message: strings.Repeat("x", 32768)})
	}
	nodes := []Node{
		{Name: "node-a", Capability: capability(withoutKVM(longReason))},
		{Name: "node-b", Capability: capability(probeFailed)},
		{Name: "node-c", Capability: capability(withoutKVM("no /dev/kvm"))},
	}
	result := Evaluate(seedProfile(), needsOf(t, seedProfile()), nodes, Options{})
	if len(result.Status.Excluded) != 3 {
		t.Fatalf("excluded %+v", result.Status.Excluded)
	}
	for _, e := range result.Status.Excluded[:2] {
		if n := utf8.RuneCountInString(e.Reason); n != vmv1alpha1.MaxExclusionReasonLength || !utf8.ValidString(e.Reason) ||
			!strings.HasSuffix(e.Reason, vmv1alpha1.Ellipsis) {
			t.Errorf("%s: reason of %d characters, valid %v, want %d ending in %q", e.Node, n, utf8.ValidString(e.Reason), vmv1alpha1.MaxExclusionReasonLength, vmv1alpha1.Ellipsis)
		}
	}
	if !strings.HasPrefix(result.Status.Excluded[0].Reason, "KVM unavailable: üü") ||
		!strings.HasPrefix(result.Status.Excluded[1].Reason, "the agent's link probe failed: xx") {
		t.Errorf("the cut reasons lost their beginning: %q, %q", result.Status.Excluded[0].Reason[:40], result.Status.Excluded[1].Reason[:40])
	}
	if got := result.Status.Excluded[2].Reason; got != "KVM unavailable: no /dev/kvm" {
		t.Errorf("a short reason changed: %q", got)
	}
}
