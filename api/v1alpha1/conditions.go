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
	// ConditionNetworkReady is True when the node's network probes succeeded and every policy is verified.
	ConditionNetworkReady = "NetworkReady"
	// NodeCapability also uses ConditionReady: the agent probed the node successfully.
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
	ReasonKVMAvailable     = "KVMAvailable"
	ReasonKVMUnavailable   = "KVMUnavailable"
	ReasonPolicyUnverified = "PolicyUnverified"
)
