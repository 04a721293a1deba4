package status

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// vmProblem is what KubeVirt says keeps the VM from running, as a check:
// its Failure condition, or a printableStatus that names an error. These
// take precedence over the instance's phase (an instance pulling its image
// in vain is still Scheduling) and over Stopped (a VM whose instance could
// not be created is Stopped with Failure=True). A VM that cannot start is
// Fatal: phase Error. One that waits for the cluster (a node, a claim)
// stays Creating, with a Warning unless the wait is normal progress. Nil
// when KubeVirt reports nothing wrong. The message is the VM's own.
func vmProblem(o *Observed) *Check {
	vm := o.VM
	if vm == nil {
		return nil
	}
	printable := vm.Status.PrintableStatus
	if failure := vmCondition(vm, kubevirtv1.VirtualMachineFailure); failure != nil && printable != kubevirtv1.VirtualMachineStatusRunning {
		check := Problem(vmv1alpha1.ReasonVMStartFailed, "KubeVirt cannot start VM %s: %s", vm.Name, failure.Message)
		return &check
	}
	switch printable {
	case kubevirtv1.VirtualMachineStatusErrImagePull, kubevirtv1.VirtualMachineStatusImagePullBackOff:
		check := Problem(vmv1alpha1.ReasonVMImagePullFailed, "VM %s is %s: %s", vm.Name, printable,
			firstMessage(o, kubevirtv1.VirtualMachineInstanceSynchronized))
		return &check
	case kubevirtv1.VirtualMachineStatusCrashLoopBackOff:
		check := Problem(vmv1alpha1.ReasonVMCrashLoopBackOff, "%s", crashLoopMessage(vm))
		return &check
	case kubevirtv1.VirtualMachineStatusDataVolumeError:
		return dataVolumeProblem(o)
	case kubevirtv1.VirtualMachineStatusUnschedulable:
		check := Check{Failed: true, Warn: true, Reason: vmv1alpha1.ReasonNoEligibleNodes,
			Message: fmt.Sprintf("KubeVirt cannot schedule VM %s: %s", vm.Name, firstMessage(o, kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled)))}
		return &check
	case kubevirtv1.VirtualMachineStatusPvcNotFound:
		// A claim CDI has not made yet is normal progress while the disks
		// are being prepared; one missing after they were is not.
		check := Check{Failed: true, Warn: true, Quiet: o.Volumes.Failed, Reason: vmv1alpha1.ReasonVolumesPending,
			Message: fmt.Sprintf("VM %s waits for a claim: %s", vm.Name, firstMessage(o, kubevirtv1.VirtualMachineInstanceSynchronized))}
		return &check
	}
	return nil
}

// dataVolumeProblem is KubeVirt's DataVolumeError: an import failed, or
// keeps failing while CDI retries it. The VM cannot start. The reason and
// message are those of VolumesBound when the disks check found the
// trouble, so Ready and VolumesBound say the same thing.
func dataVolumeProblem(o *Observed) *Check {
	check := Problem(vmv1alpha1.ReasonImportFailed, "VM %s cannot start: KubeVirt reports DataVolumeError (an import failed or keeps failing)", o.VM.Name)
	if o.Volumes.Failed && !o.Volumes.Unknown {
		check.Reason, check.Message = o.Volumes.Reason, o.Volumes.Message
	}
	return &check
}

func vmCondition(vm *kubevirtv1.VirtualMachine, t kubevirtv1.VirtualMachineConditionType) *kubevirtv1.VirtualMachineCondition {
	for i := range vm.Status.Conditions {
		if c := &vm.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// firstMessage is the message of a False condition of that type, as the VM
// copied it from its instance, or as the instance has it; otherwise the
// message of the instance's first condition that has one.
func firstMessage(o *Observed, t kubevirtv1.VirtualMachineInstanceConditionType) string {
	for _, c := range o.VM.Status.Conditions {
		if string(c.Type) == string(t) && c.Status == corev1.ConditionFalse && c.Message != "" {
			return c.Message
		}
	}
	if o.VMI != nil {
		for _, c := range o.VMI.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionFalse && c.Message != "" {
				return c.Message
			}
		}
	}
	return vmiMessage(o.VMI)
}

func crashLoopMessage(vm *kubevirtv1.VirtualMachine) string {
	failure := vm.Status.StartFailure
	if failure == nil {
		return fmt.Sprintf("VM %s keeps failing before it runs; KubeVirt waits before it starts it again", vm.Name)
	}
	message := fmt.Sprintf("VM %s failed %d time(s) in a row before it ran; KubeVirt waits before it starts it again", vm.Name, failure.ConsecutiveFailCount)
	if failure.RetryAfterTimestamp != nil {
		message += " (at " + failure.RetryAfterTimestamp.UTC().Format(time.RFC3339) + ")"
	}
	return message
}
