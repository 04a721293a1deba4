package agent

// The permissions vmop-agent needs. make manifests turns these markers into
// deploy/rbac/agent/role.yaml, which the Helm chart installs and
// cmd/vmop-agent's RBAC test binds. NodeCapabilities
// are created and their status written; Nodes are read for the owner
// reference and the policies' node selectors; Leases carry liveness; nmstate
// policies and enactments are only watched.
//
// +kubebuilder:rbac:groups=vm.example.com,resources=nodecapabilities,verbs=get;create
// +kubebuilder:rbac:groups=vm.example.com,resources=nodecapabilities/status,verbs=update
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationpolicies;nodenetworkconfigurationenactments,verbs=get;list;watch
