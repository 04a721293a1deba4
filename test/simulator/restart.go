package simulator

import (
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Messages of KubeVirt's RestartRequired condition.
const (
	restartNonLiveField = "a non-live-updatable field was changed in the template spec"
	restartMemory       = "memory updated in template spec. Memory-hotplug is only available for migratable VMs"
)

// restartRequired says why the running instance needs a restart to take the
// VM's spec, "" when it does not: KubeVirt's rule under its default
// LiveUpdate rollout (pkg/virt-controller/watch/vm/vm.go,
// syncRestartRequired and handleMemoryHotplugRequest;
// pkg/network/vmliveupdate/restart.go). Live: CPU sockets, node selector,
// affinity, tolerations, and interfaces and networks added (hotplugged).
// Everything else restarts: CPU cores, threads or model, a disk or volume
// added, removed or changed (none of ours is hotpluggable; the cloud-init
// volume included), an interface or network changed or removed, and
// memory, since no simulated instance is live-migratable. The instance's
// spec stands for the revision it was started from: the simulator copies
// the template into it and never changes it.
func restartRequired(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) string {
	if vm.Spec.Template == nil || isFinal(vmi) {
		return ""
	}
	want := vm.Spec.Template.Spec.DeepCopy()
	had := vmi.Spec.DeepCopy()
	if !apiequality.Semantic.DeepEqual(had.Domain.Memory, want.Domain.Memory) {
		return restartMemory
	}
	if had.Domain.CPU != nil && want.Domain.CPU != nil {
		had.Domain.CPU.Sockets = want.Domain.CPU.Sockets
	}
	had.NodeSelector, had.Affinity, had.Tolerations = want.NodeSelector, want.Affinity, want.Tolerations
	if onlyAdded(had.Domain.Devices.Interfaces, want.Domain.Devices.Interfaces, func(i kubevirtv1.Interface) string { return i.Name }) &&
		onlyAdded(had.Networks, want.Networks, func(n kubevirtv1.Network) string { return n.Name }) {
		had.Domain.Devices.Interfaces, had.Networks = want.Domain.Devices.Interfaces, want.Networks
	}
	if !apiequality.Semantic.DeepEqual(had, want) {
		return restartNonLiveField
	}
	return ""
}

// onlyAdded says whether every item of had is in want unchanged: want may
// only add items (KubeVirt hotplugs those).
func onlyAdded[T any](had, want []T, name func(T) string) bool {
	wanted := make(map[string]T, len(want))
	for _, item := range want {
		wanted[name(item)] = item
	}
	for _, item := range had {
		other, ok := wanted[name(item)]
		if !ok || !apiequality.Semantic.DeepEqual(item, other) {
			return false
		}
	}
	return true
}
