// Package hostnetwork reconciles HostNetworks, the host networks a cluster
// admin declares for VMs. For a managed one it keeps one nmstate
// NodeNetworkConfigurationPolicy per uplink group, refuses to build on an
// uplink or bridge an older HostNetwork already has, and reports on each
// selected node whether its agent verified the network in the kernel. An
// edit is judged node by node: only what a node no longer gets is reverted,
// there alone, and not while a VM on the network runs there (EditHeld);
// a node whose labels take it out of a policy's selector is such a node
// too, found through the status's builtOn record, since nmstate only
// deletes its enactment. A
// deletion waits while profiles use the network, then reverts the host side
// (state absent, bounded by a timeout) and deletes the policies: every wait
// is in the Deleting condition.
package hostnetwork
