package hostnetwork

// The permissions of the HostNetwork controller, for make manifests.
//
// +kubebuilder:rbac:groups=vm.example.com,resources=hostnetworks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=vm.example.com,resources=hostnetworks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vm.example.com,resources=hostnetworks/finalizers,verbs=update
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationenactments,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubevirt.io,resources=virtualmachineinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
