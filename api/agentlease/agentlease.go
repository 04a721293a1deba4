// Package agentlease is the convention of the agents' Leases, shared by
// vmop-agent (which renews them), vmop-controller (placement, node labels,
// metrics) and the uninstall cleanup: one Lease per node in the release
// namespace, named after the node and owned by it. A leaf package, so the
// agent's binary does not pull in controller code for it.
package agentlease

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// Is tells an agent's Lease from the others in the namespace, such as the
// leader election's.
func Is(lease *coordinationv1.Lease) bool {
	for _, ref := range lease.OwnerReferences {
		if ref.Kind == "Node" && ref.APIVersion == "v1" && ref.Name == lease.Name {
			return true
		}
	}
	return false
}

// Expiry is when a Lease lapses; the zero time when it has no renewal.
func Expiry(lease *coordinationv1.Lease) time.Time {
	if lease == nil || lease.Spec.RenewTime == nil || lease.Spec.LeaseDurationSeconds == nil {
		return time.Time{}
	}
	return lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
}
