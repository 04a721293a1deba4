package v1alpha1

// Condition types of a VirtualMachineProfile.
const (
	// ConditionReady is True when the VM runs and every network and volume is ready.
	ConditionReady = "Ready"
	// ConditionNetworksConfigured is True when every attachment exists and every host policy is applied.
	ConditionNetworksConfigured = "NetworksConfigured"
	// ConditionVolumesBound is True when every disk's claim is bound (and imported, for images).
	ConditionVolumesBound = "VolumesBound"
	// ConditionScheduled is True when at least one node can host the VM.
	ConditionScheduled = "Scheduled"
	// ConditionRestartRequired mirrors KubeVirt's: the VM runs an older spec.
	ConditionRestartRequired = "RestartRequired"
)

// Condition types of a HostNetwork.
const (
	// ConditionDeleting says what the deletion of a HostNetwork waits for.
	ConditionDeleting = "Deleting"
	// ConditionEditHeld is present, True with ReasonInUse, while an edit of
	// a managed HostNetwork is not applied because it would take a bridge,
	// bond, VLAN interface or VFs from nodes where VMs on it run; the
	// message names the nodes, what each loses and whose VMs run there.
	ConditionEditHeld = "EditHeld"
	// HostNetwork also uses ConditionReady: every selected node has it, verified.
)

// Reasons on HostNetwork conditions.
const (
	ReasonAllNodesVerified    = "AllNodesVerified"
	ReasonNodesNotVerified    = "NodesNotVerified"
	ReasonNoNodesSelected     = "NoNodesSelected"
	ReasonUplinkConflict      = "UplinkConflict"
	ReasonBridgeConflict      = "BridgeConflict"
	ReasonUplinkGroupsOverlap = "UplinkGroupsOverlap"
	ReasonNMStateMissing      = "NMStateMissing"
	ReasonInUse               = "InUse"
	ReasonReverting           = "Reverting"
	ReasonRevertTimedOut      = "RevertTimedOut"
	// ReasonEditHeld is the Warning event of a held edit (ConditionEditHeld).
	ReasonEditHeld = "EditHeld"
)

// Condition types of a NodeCapability.
const (
	// ConditionKVMReady is True when /dev/kvm is usable.
	ConditionKVMReady = "KVMReady"
	// ConditionNetworkReady is True when the node's links were probed and every policy is verified.
	ConditionNetworkReady = "NetworkReady"
	// ConditionLinksProbed is True when the last link dump succeeded and
	// every link in it was read. False with ReasonProbeFailed when the dump
	// failed (the links reported are then those of the last successful
	// dump), with ReasonProbePartial when some links were skipped (the
	// message names each and why).
	ConditionLinksProbed = "LinksProbed"
	// ConditionBridgeVLANsProbed is True when the last bridge VLAN dump
	// succeeded. False with ReasonProbeFailed when it failed: the port VLANs
	// reported are then those of the last successful dump.
	ConditionBridgeVLANsProbed = "BridgeVLANsProbed"
	// ConditionSRIOVProbed is True when the last SR-IOV probe read every
	// interface. False with ReasonProbeFailed when it failed as a whole (the
	// PFs reported are then those of the last successful probe), with
	// ReasonProbePartial when some interfaces were skipped (named in the message).
	ConditionSRIOVProbed = "SRIOVProbed"
	// ConditionVLANCountersReady is True when the agent's per-VLAN eBPF
	// counters are attached to every uplink and bridge port. False with
	// ReasonBPFUnavailable when the agent cannot load them at all (no BPF
	// support or capabilities, or turned off), with ReasonAttachFailed when
	// some ports could not be hooked (named in the message), with
	// ReasonPortLimitReached when the node has more ports to count than the
	// agent's --vlan-counter-max-ports (the first ones by role and name are
	// counted). Placement does not read it: counting is monitoring, not a
	// capability.
	ConditionVLANCountersReady = "VLANCountersReady"
	// ConditionTruncated is present, True with ReasonSizeBoundExceeded,
	// only when the agent left inventory entries out to keep the object
	// within its size bound (1 MiB); the message names each list cut, how
	// many entries are missing and the first and last of them. Placement
	// adds it to the reason of a node that lacks a requirement.
	ConditionTruncated = "Truncated"
	// NodeCapability also uses ConditionReady: True only when every probe
	// fully succeeded; otherwise its message names the probes that did not.
)

// ReasonImportRetrying says that CDI's importer stopped on an error that
// is not fatal (a bad URL, credentials, a pull error) and that CDI retries
// it forever, as KubeVirt's DataVolumeError sees it (Running=False, reason
// Error or ImagePullFailed); the message carries CDI's. The VM is not held:
// KubeVirt waits for the DataVolume itself and starts once an import
// succeeds.
const ReasonImportRetrying = "ImportRetrying"

// Reasons used on conditions. Each says in one CamelCase word why a condition has its status.
const (
	ReasonReconciling         = "Reconciling"
	ReasonVMRunning           = "VMRunning"
	ReasonVMNotRunning        = "VMNotRunning"
	ReasonVMStopped           = "VMStopped"
	ReasonVMFailed            = "VMFailed"
	ReasonRestartRequired     = "RestartRequired"
	ReasonNetworksReady       = "NetworksReady"
	ReasonNADMissing          = "NetworkAttachmentDefinitionMissing"
	ReasonHostNetworkPending  = "HostNetworkPending"
	ReasonHostNetworkFailed   = "HostNetworkFailed"
	ReasonStaticIPConflict    = "StaticIPConflict"
	ReasonVolumesBound        = "VolumesBound"
	ReasonVolumesPending      = "VolumesPending"
	ReasonImportInProgress    = "ImportInProgress"
	ReasonImportFailed        = "ImportFailed"
	ReasonStorageClassMissing = "StorageClassMissing"
	ReasonResizeNotSupported  = "ResizeNotSupported"
	ReasonNameConflict        = "NameConflict"
	ReasonDependencyMissing   = "DependencyMissing"
	ReasonNodesEligible       = "NodesEligible"
	ReasonNoEligibleNodes     = "NoEligibleNodes"
	ReasonTooFewNodes         = "TooFewNodesForAntiAffinity"
	// ReasonVMStartFailed: KubeVirt could not create the VM's instance (its
	// VM condition Failure=True: an admission webhook or a quota refused
	// it); the message is KubeVirt's.
	ReasonVMStartFailed = "VMStartFailed"
	// ReasonVMCrashLoopBackOff: the VM's instances keep failing before they
	// run, and KubeVirt waits before it starts the next one.
	ReasonVMCrashLoopBackOff = "VMCrashLoopBackOff"
	// ReasonVMImagePullFailed: the node cannot pull the VM's container disk
	// (osImage without a boot disk): KubeVirt's ErrImagePull or
	// ImagePullBackOff, with the kubelet's message.
	ReasonVMImagePullFailed = "VMImagePullFailed"
	// ReasonNodeLost: the node the VM instance runs on is lost (NotReady,
	// and its agent's Lease expired). The Ready condition says what the VM
	// waits for before it restarts elsewhere; a Warning event records it.
	ReasonNodeLost = "NodeLost"
	// ReasonPreviousProfileVolume: a volume of this name still belongs to a
	// deleted profile of the same name and is waiting for garbage collection.
	ReasonPreviousProfileVolume = "PreviousProfileVolume"
	// ReasonStaticIPSettling: the VM waits until every profile created in the
	// same second is visible, so the older one reliably gets the address.
	ReasonStaticIPSettling = "StaticIPSettling"
	// ReasonStaticIPNotAllowed: a static address lies outside every subnet
	// its HostNetwork declares, or is a subnet's gateway or reserved.
	ReasonStaticIPNotAllowed = "StaticIPNotAllowed"
	// ReasonMACConflict: another profile uses the network's MAC address on
	// the same segment, and keeps it (its VM runs with it, or it is older).
	ReasonMACConflict = "MACConflict"
	// ReasonHostNetworkNotDeclared: no HostNetwork declares the host side a
	// network needs (its bridge, or a default of its type).
	ReasonHostNetworkNotDeclared = "HostNetworkNotDeclared"
	// ReasonHostNetworkNotFound: networks[].hostNetwork names no HostNetwork.
	ReasonHostNetworkNotFound = "HostNetworkNotFound"
	// ReasonHostNetworkMismatch: the named HostNetwork is of another type,
	// bridge or resource than the network.
	ReasonHostNetworkMismatch = "HostNetworkMismatch"
	// ReasonNamespaceNotAllowed: the HostNetwork's namespaceSelector does not
	// pick the profile's namespace.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonVLANNotAllowed: the VLAN is outside the HostNetwork's allowedVLANs,
	// the network is untagged where allowedVLANs leave untagged use refused
	// (spec.untagged), or the VLAN needs a HostNetwork that says where it is trunked.
	ReasonVLANNotAllowed = "VLANNotAllowed"
	// ReasonMTUTooLarge: the network's MTU is above the HostNetwork's.
	ReasonMTUTooLarge = "MTUTooLarge"
	// ReasonNADNamespaceNotShared: nadName points into a namespace the
	// operator is not configured to share attachments from.
	ReasonNADNamespaceNotShared = "NADNamespaceNotShared"

	ReasonProbeSucceeded   = "ProbeSucceeded"
	ReasonProbeFailed      = "ProbeFailed"
	ReasonProbePartial     = "ProbePartial"
	ReasonKVMAvailable     = "KVMAvailable"
	ReasonKVMUnavailable   = "KVMUnavailable"
	ReasonPolicyUnverified = "PolicyUnverified"
	ReasonCounting         = "Counting"
	ReasonBPFUnavailable   = "BPFUnavailable"
	ReasonAttachFailed     = "AttachFailed"
	// ReasonPortLimitReached: more ports to count than the agent's limit.
	ReasonPortLimitReached = "PortLimitReached"

	// ReasonSizeBoundExceeded: the full inventory would not fit the
	// NodeCapability's size bound (ConditionTruncated).
	ReasonSizeBoundExceeded = "SizeBoundExceeded"
)

// Reasons of the Normal events vmop-controller records on profiles. Warning
// events carry the reason of the Ready condition they announce. Creating a
// child records none: the status names every child.
const (
	// EventAdopted: a retained disk (or an orphaned child) was taken back by a
	// profile of the name it was made for.
	EventAdopted = "Adopted"
	// EventReleased: a disk lost its owner reference (retainPolicy Retain, or
	// the disk left the spec), so nothing deletes it with the profile.
	EventReleased = "Released"
	// EventImportDetached: a retained disk's import finished; its claim no
	// longer depends on the DataVolume, which was removed.
	EventImportDetached = "ImportDetached"
	// EventDeleted: a child the profile no longer needs was deleted.
	EventDeleted = "Deleted"
	// EventResizing: a claim's request was raised to the disk's new size.
	EventResizing = "Resizing"
	// EventAccessRestored: a HostNetwork allows a revoked profile again; its
	// VM is given back the profile's run strategy (its attachment is made
	// again).
	EventAccessRestored = "AccessRestored"
	// EventRestartedElsewhere: the instance on a lost node was deleted so
	// that KubeVirt starts the VM on another node (no ReadWriteOnce claim
	// held it there, or the node was fenced).
	EventRestartedElsewhere = "RestartedElsewhere"
	// EventRecreated: the profile's VirtualMachine was deleted from under
	// it (kubectl delete vm) and was created again, with the same disks.
	EventRecreated = "Recreated"
)

// EventAccessRevoked (Warning): a HostNetwork's rule now excludes a
// profile's network (namespaceSelector, allowedVLANs, mtu) or the
// HostNetwork is being deleted; the VM was halted and the operator's
// attachment deleted. The message says what restores it.
const EventAccessRevoked = "AccessRevoked"

// NormalEventReasons lists the reasons of the Normal events above.
func NormalEventReasons() []string {
	return []string{EventAdopted, EventReleased, EventImportDetached, EventDeleted, EventResizing, EventAccessRestored,
		EventRestartedElsewhere, EventRecreated}
}

// ReasonHostNetworkNotAccepting says the HostNetwork is in conflict or not
// Ready and takes no new users (existing ones stay), or is being deleted
// and takes its users off the segment.
const ReasonHostNetworkNotAccepting = "HostNetworkNotAccepting"
