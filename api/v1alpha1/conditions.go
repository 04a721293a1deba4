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
	// NodeCapability also uses ConditionReady: True only when every probe
	// fully succeeded; otherwise its message names the probes that did not.
)

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
	ReasonSecretMissing       = "SecretMissing"
	ReasonNameConflict        = "NameConflict"
	ReasonDependencyMissing   = "DependencyMissing"
	ReasonNodesEligible       = "NodesEligible"
	ReasonNoEligibleNodes     = "NoEligibleNodes"
	ReasonTooFewNodes         = "TooFewNodesForAntiAffinity"

	ReasonProbeSucceeded   = "ProbeSucceeded"
	ReasonProbeFailed      = "ProbeFailed"
	ReasonProbePartial     = "ProbePartial"
	ReasonKVMAvailable     = "KVMAvailable"
	ReasonKVMUnavailable   = "KVMUnavailable"
	ReasonPolicyUnverified = "PolicyUnverified"
)
