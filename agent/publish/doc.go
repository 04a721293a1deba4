// Package publish writes this node's NodeCapability and renews its Lease.
// The capability is named after the node and owned by the Node object, and
// its status is written only when it differs from what the API stores (read
// back every time, never remembered), so a restarted agent on an unchanged
// node writes nothing. Liveness goes through the cheap Lease instead.
package publish
