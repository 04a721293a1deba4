package agent

// The permissions vmop-agent needs. make manifests turns these markers into
// deploy/rbac/agent/role.yaml, which the Helm chart installs and
// agent/daemon's RBAC test binds. NodeCapabilities
// are created and their status written; Nodes are read for the owner
// reference and the policies' node selectors; Leases carry liveness, in
// the release namespace only (a namespaced Role: the chart puts it in the
// release namespace); nmstate policies and enactments are only watched.
// A ValidatingAdmissionPolicy the chart installs narrows the writes to the
// agent's own node (deploy/chart/templates/admission.yaml). TokenReviews
// and SubjectAccessReviews check each scraper of the agent's HTTPS
// /metrics (controller-runtime's metrics filter); they read nothing stored.
//
// +kubebuilder:rbac:groups=vm.example.com,resources=nodecapabilities,verbs=get;create
// +kubebuilder:rbac:groups=vm.example.com,resources=nodecapabilities/status,verbs=update
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=vmop-system
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationpolicies;nodenetworkconfigurationenactments,verbs=get;list;watch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
