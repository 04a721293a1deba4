// Package capability turns probe results into a NodeCapabilityStatus. It is
// pure: the same results always give the same status, with stable messages
// and no timestamps of its own, so an unchanged node yields an unchanged
// status and the publisher has nothing to write.
package capability
