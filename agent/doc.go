// Package agent will hold the node agent: probes for KVM, links and SR-IOV
// behind small interfaces, the NodeCapability publisher and the nmstate
// policy verifier. Nothing is implemented yet (issue #4).
package agent
