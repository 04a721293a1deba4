// Package agent runs one node's vmop-agent: on every round it probes the
// kernel (KVM, links, SR-IOV), verifies the nmstate policies that select the
// node, builds the NodeCapability status, publishes it when it changed and
// refreshes the node metrics. Rounds come from the watch package; the probes,
// verifier and publisher live in their own sub-packages.
package agent
