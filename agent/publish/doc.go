// Package publish writes this node's NodeCapability and renews its Lease.
// Both are named after the node and owned by the Node object, so the
// garbage collector removes them with the Node and never with an agent pod.
// The capability's status is written only when it differs from what the API
// stores (read back every time, never remembered), so a restarted agent on
// an unchanged node writes nothing. Liveness goes through the cheap Lease
// instead.
package publish
