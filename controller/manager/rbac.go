package manager

// The permissions of the secure /metrics endpoint, for make manifests:
// each scrape's bearer token is checked with a TokenReview and its user's
// right to GET /metrics with a SubjectAccessReview (both cached), as
// controller-runtime's metrics filter does. Both are create-only reviews
// that read nothing stored.
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// The permissions vmop-controller needs (the profile, HostNetwork and
// node-label reconcilers together); `make manifests` turns these markers
// into deploy/rbac/controller/role.yaml, and the integration tests run the controller
// under exactly that role, so a missing permission fails a test, not a cluster.
// No delete on VMs, claims or Secrets: the controller never deletes them.
// Children of a deleted profile go with the garbage collector, and those an
// orphan deletion (--cascade=orphan) left without owner stay, as the user
// asked. Delete is only for a retained disk's DataVolume once its import is
// done, and for the attachment of a network removed from a profile or
// whose HostNetwork access was revoked (a revoked VM is halted by a patch,
// never deleted; attachments named by nadName are never deleted). The
// HostNetwork controller reads VMs' instances (get/list/watch below) to
// count a revoked profile as a user until its instance is gone.
// Secrets: no get, list or watch, so the controller's token reads no
// Secret anywhere; it writes the cloud-init Secret of a profile whose data
// does not fit inline in the VM, blind, by server-side apply (create and
// patch). A ValidatingAdmissionPolicy of the chart lets every create, update and
// delete of these kinds through only on objects labelled
// app.kubernetes.io/managed-by: vmop-controller (for update and delete, the
// stored object too). Update on profiles/finalizers lets
// children carry blockOwnerDeletion where the OwnerReferencesPermission-
// Enforcement admission plugin runs (OpenShift). Leases (the agents'
// liveness, and leader election) only in the release namespace: a
// namespaced Role, which the chart places there. Events, the profiles' and
// HostNetworks' and leader election's "became leader", go through the core
// events API, which alone stores lastTimestamp (controller/manager's
// coreEventSink). Node patches are narrowed
// to labels under cap.vm.example.com/ by a ValidatingAdmissionPolicy.
//
// +kubebuilder:rbac:groups=vm.example.com,resources=virtualmachineprofiles,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=vm.example.com,resources=virtualmachineprofiles/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=vm.example.com,resources=virtualmachineprofiles/finalizers,verbs=update
// +kubebuilder:rbac:groups=k8s.cni.cncf.io,resources=network-attachment-definitions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=vm.example.com,resources=hostnetworks,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=cdi.kubevirt.io,resources=datavolumes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kubevirt.io,resources=virtualmachines,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=kubevirt.io,resources=virtualmachineinstances,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create;patch
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;update;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=vm.example.com,resources=nodecapabilities,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update,namespace=vmop-system
