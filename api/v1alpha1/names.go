package v1alpha1

// Every label, annotation and finalizer name the operator reads or writes,
// in one place: the controller packages, the lifecycle hooks and the tests
// all take them from here.

// Labels and annotations on what the operator creates for a profile.
const (
	// LabelProfile names the profile an object belongs to. With LabelDisk it
	// lets a re-created profile find (and re-adopt) the disks it retained.
	LabelProfile = "vm.example.com/profile"
	// LabelDisk names the disk of the profile a volume holds.
	LabelDisk = "vm.example.com/disk"
	// LabelRetainPolicy is the retain policy of a disk's volume.
	LabelRetainPolicy = "vm.example.com/retain-policy"
	// AnnotationImportedFrom marks a retained disk's claim whose import
	// finished and which no longer depends on its DataVolume: the image it
	// was imported from.
	AnnotationImportedFrom = "vm.example.com/imported-from"
	// AnnotationProfileUID is the UID of the profile that last took a volume
	// (volumes may outlive profiles), so adoption by a new one is visible.
	AnnotationProfileUID = "vm.example.com/profile-uid"
	// AnnotationDiskSize on a disk's volume is the size the operator last
	// asked for. CDI inflates a DataVolume claim's request by the filesystem
	// overhead (and copies the DataVolume's annotations to the claim), so
	// the request alone does not say what was asked.
	AnnotationDiskSize = "vm.example.com/disk-size"
	// LabelManagedBy marks objects the operator created; it never touches others.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "vmop-controller"
	// LabelSpread marks VMs of profiles with antiAffinity: true; such VMs avoid
	// nodes that already run one.
	LabelSpread = "vm.example.com/spread"
	// LabelHostNetwork names the HostNetwork a NodeNetworkConfigurationPolicy
	// the operator made belongs to.
	LabelHostNetwork = "vm.example.com/host-network"
	// AnnotationResourceName is Multus's annotation naming the device-plugin
	// resource a NetworkAttachmentDefinition needs.
	AnnotationResourceName = "k8s.v1.cni.cncf.io/resourceName"
	// AnnotationRunStrategy on a VM is the profile's run strategy when the VM
	// was last written, so a run strategy changed since by someone else
	// (virtctl) can be told apart from one the profile changed.
	AnnotationRunStrategy = "vm.example.com/run-strategy"
	// AnnotationCloudInitHash on a VM whose cloud-init data is in a Secret is
	// the hash of that Secret's data when it was last written: the controller
	// cannot read the Secret, so the VM remembers what it holds.
	AnnotationCloudInitHash = "vm.example.com/cloudinit-hash"
	// AnnotationDesiredHash records the hash of what was last applied. A change
	// of our own desired object (including a field we stopped setting) shows as
	// a new hash; a change made by someone else shows in the object itself.
	AnnotationDesiredHash = "vm.example.com/desired-hash"
	// AnnotationRevertDeadline on a policy being reverted is when the wait for
	// nmstate gives up (RFC 3339). Its presence on the cached policy also
	// proves the cached generation is the reverting one.
	AnnotationRevertDeadline = "vm.example.com/revert-deadline"
)

// CapabilityLabelPrefix is the label domain the controller owns on Nodes.
const CapabilityLabelPrefix = "cap.vm.example.com/"

// Node label keys the controller projects. Each holds "true" when the node
// offers it; the labels of bridges, VLANs and host networks are made by
// functions of the placement package.
const (
	// LabelKVM: /dev/kvm is usable.
	LabelKVM = CapabilityLabelPrefix + "kvm"
	// LabelReporting: the node's agent renews its Lease. Removed when the
	// Lease expires, so new VMs avoid the node while running ones stay.
	LabelReporting = CapabilityLabelPrefix + "reporting"
	// LabelSRIOV: some SR-IOV physical function has a free VF.
	LabelSRIOV = CapabilityLabelPrefix + "sriov"
	// AnnotationAbsentSince records on a Node, per label, when its capability
	// disappeared, so the grace period survives controller restarts.
	AnnotationAbsentSince = CapabilityLabelPrefix + "absent-since"
)

// Finalizers.
const (
	// FinalizerHostNetwork holds a deleted HostNetwork until no profile uses
	// it and, when managed, its host side is reverted.
	FinalizerHostNetwork = "vm.example.com/hostnetwork"
	// FinalizerLegacyProfile was put on every profile by earlier versions, to
	// release retained disks before the garbage collector saw the deletion.
	// Retained disks now carry no owner reference at all, so nothing needs to
	// wait for the controller: the finalizer is removed once the profile's
	// disks are migrated, and no profile gets it any more.
	FinalizerLegacyProfile = "vm.example.com/cleanup"
)

// Labels and annotations of the revert policies: short-lived policies,
// owned by nothing, that undo on some nodes what a HostNetwork's policies
// built there. They are not owned by the HostNetwork so that a foreground
// deletion's garbage collection (which deletes owned objects before the
// owner) cannot take a revert away before nmstate applied it.
const (
	// LabelPolicyRole is PolicyRoleRevert on a revert policy.
	LabelPolicyRole = "vm.example.com/policy-role"
	// PolicyRoleRevert is the value of LabelPolicyRole on a revert policy.
	PolicyRoleRevert = "revert"
	// AnnotationReverts says what a revert policy undoes, for messages: the
	// policy it reverts everywhere, or the node it reverts on.
	AnnotationReverts = "vm.example.com/reverts"
)

// AnnotationRevoked on a VM says that the operator halted it because a
// HostNetwork no longer allows its profile, and why. While it is there the
// VM is kept halted (a virtctl start is undone); once access is restored
// the VM gets the profile's run strategy back and the annotation goes.
const AnnotationRevoked = "vm.example.com/revoked"
