// Package placement decides where a profile's VM may run, from what each
// node's agent reported in its NodeCapability. It is pure: NodeLabels
// projects a capability into node labels under vmv1alpha1.CapabilityLabelPrefix (the labels a
// VM's required node affinity names) for what some profile or HostNetwork
// asks of nodes (the Index keeps what profiles want), Requirements lists
// what a profile needs, and Evaluate runs a chain of small checks over
// every node, keeping the first failing reason of each excluded node for
// the profile's status. A node carries a requirement's label exactly when
// Evaluate finds it offers that requirement (FuzzNodeLabels), so the
// scheduler and the status agree. Three functions read through a client
// (ReadNodes, SpreadShortage, HostNetworkOffers) to feed the pure ones; the
// rest touch no API.
package placement
