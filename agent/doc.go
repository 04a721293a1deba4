// Package agent runs one node's vmop-agent: on every round it probes the
// kernel (KVM, links, bridge VLANs, SR-IOV), verifies the nmstate policies
// that select the node, builds the NodeCapability status, publishes it when
// it changed and refreshes the node metrics. A probe that fails keeps its
// last good result in the status, and its condition says so, so that a
// transient error never empties the inventory placement reads. Rounds come
// from the watch package; the probes, verifier and publisher live in their
// own sub-packages.
package agent
