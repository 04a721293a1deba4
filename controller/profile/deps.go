package profile

// Dependencies says which of the APIs the operator drives the cluster
// serves. A missing one is reported on the profiles that need it; everything
// that does not need it keeps working. The manager discovers them
// (manager.DiscoverDependencies) and restarts the process when they change.
type Dependencies struct {
	KubeVirt bool
	CDI      bool
	Multus   bool
	NMState  bool
}
