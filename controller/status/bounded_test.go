package status

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// TestScheduledMessageFitsItsCondition: the Scheduled condition repeats the
// listed exclusions; at their largest (ten nodes with 253-character names,
// each reason at its 256-character cut, in three-byte characters) the
// message stays within metav1.Condition's 32,768 characters, so the status
// write cannot fail on it.
func TestScheduledMessageFitsItsCondition(t *testing.T) {
	status := &vmv1alpha1.PlacementStatus{ExcludedNodes: 5000}
	for i := range placement.MaxExcludedListed {
		name := fmt.Sprintf("%03d", i) + strings.Repeat("n", 250)
		reason := strings.Repeat("€", vmv1alpha1.MaxExclusionReasonLength-1) + vmv1alpha1.Ellipsis
		status.Excluded = append(status.Excluded, vmv1alpha1.NodeExclusion{Node: name, Reason: reason})
	}
	c := Scheduled(&Observed{Placement: status})
	if c == nil {
		t.Fatal("no Scheduled condition for a profile no node can host")
	}
	n := utf8.RuneCountInString(c.Message)
	t.Logf("Scheduled message: %d characters, %d bytes", n, len(c.Message))
	if n > 32768 {
		t.Fatalf("Scheduled message of %d characters is over metav1.Condition's 32768", n)
	}
	if !strings.HasSuffix(c.Message, "; and 4990 more") {
		t.Fatalf("message does not count the unlisted nodes: ...%s", c.Message[len(c.Message)-40:])
	}
}
