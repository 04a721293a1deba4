// Package capability turns probe results into a NodeCapabilityStatus: the
// inventory, and conditions for readiness, KVM, policies and each probe
// (succeeded, failed with its last good data kept, or partial with the
// skipped entries named). It is pure: the same results always give the
// same status, with stable messages and no timestamps or counts of its own,
// so an unchanged node, or an unchanged failure, yields an unchanged status
// and the publisher has nothing to write. For the same reason VMs' own
// bridge ports (taps, host ends of pods' veths) are left out: a VM starting
// or stopping does not change the status.
package capability
