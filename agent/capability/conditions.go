package capability

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MergeConditions lays the freshly built conditions over the stored ones:
// a condition keeps its stored LastTransitionTime unless its status changed,
// so an unchanged node produces a status identical to the stored one.
// Conditions the agent no longer sets are dropped.
func MergeConditions(stored, built []metav1.Condition, now metav1.Time) []metav1.Condition {
	merged := make([]metav1.Condition, 0, len(built))
	for _, c := range built {
		if old := meta.FindStatusCondition(stored, c.Type); old != nil && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		merged = append(merged, c)
	}
	return merged
}
