// Package status derives a VirtualMachineProfile's status — phase,
// conditions, per-network addresses — from what the reconciler observed, with
// one small pure function for each, so every rule has its own table test.
package status

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// Check is the outcome of one part of the reconcile (networks, volumes, ...).
// The zero value is a pass.
type Check struct {
	// Failed is true when the part is not done yet or cannot be done.
	Failed bool
	// Unknown marks a part that could not be checked at all (the apiserver
	// did not answer): its condition is Unknown, not True.
	Unknown bool
	// Fatal marks failures that need the user to act (a name clash, a
	// conflict): the profile's phase becomes Error.
	Fatal bool
	// Holds is true when the VM must not be created while this check fails.
	Holds bool
	// Quiet marks a short wait that is part of normal progress (a host
	// network being applied, an address claim settling): no Warning event.
	Quiet bool
	// Brief marks a wait of a second or two that ends by itself (a new
	// profile's static address settling): a status showing only that is not
	// written, the reconcile after the wait writes the next one.
	Brief bool
	// Warn marks a failure that does not hold the VM and is no Error, but
	// deserves a Warning event: an import CDI keeps retrying on an error,
	// or KubeVirt cannot place or start the VM yet.
	Warn    bool
	Reason  string
	Message string
}

// Pass is a successful check with a reason and message for its condition.
func Pass(reason, message string) Check {
	return Check{Reason: reason, Message: message}
}

// Wait is a check that is not done yet and keeps the VM from being created.
func Wait(reason, format string, args ...any) Check {
	return Check{Failed: true, Holds: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Problem is a check that needs the user: phase Error, VM held.
func Problem(reason, format string, args ...any) Check {
	return Check{Failed: true, Fatal: true, Holds: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Unknown is a part that could not be checked because a request failed
// for a reason that may pass (timeout, 5xx, throttling). The VM is held: the
// reconcile did not see enough to change it.
func Unknown(reason, format string, args ...any) Check {
	return Check{Failed: true, Unknown: true, Holds: true, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Observed is everything one reconcile learned, the input of every status function.
type Observed struct {
	Networks Check
	Volumes  Check
	// VolumeStatuses are the per-disk reports.
	VolumeStatuses []vmv1alpha1.VolumeStatus
	// Blockers are other checks that failed (cloud-init, SSH key secret,
	// KubeVirt missing, name clashes with the VM).
	Blockers    []Check
	RunStrategy vmv1alpha1.RunStrategy
	VM          *kubevirtv1.VirtualMachine
	VMI         *kubevirtv1.VirtualMachineInstance
	// Placement is the eligibility summary, nil when placement did not run.
	Placement *vmv1alpha1.PlacementStatus
	// Affinity is what the VM's required node affinity asks for.
	Affinity desired.Placement
	// Attachments are the networks as resolved against the declared host
	// networks; nil when a network was refused.
	Attachments []desired.Attachment
	// SpreadShortage explains why antiAffinity cannot be met, when it cannot.
	SpreadShortage string
	// RecheckAfter asks for another reconcile after this long, for a
	// decision that waits on time rather than on an event; zero for none.
	RecheckAfter time.Duration
}

// firstProblem is the first failed check among blockers, networks,
// volumes and what KubeVirt reports of the VM: fatal ones first, then
// unknown ones.
func (o *Observed) firstProblem() *Check {
	all := append([]Check{}, o.Blockers...)
	all = append(all, o.Networks, o.Volumes)
	if vm := vmProblem(o); vm != nil {
		all = append(all, *vm)
	}
	// What needs the user first, then what could not be checked, then waits.
	for _, matches := range []func(Check) bool{
		func(c Check) bool { return c.Fatal },
		func(c Check) bool { return c.Unknown },
		func(Check) bool { return true },
	} {
		for i := range all {
			if all[i].Failed && matches(all[i]) {
				return &all[i]
			}
		}
	}
	return nil
}

// Settling is a Wait that is part of normal progress: it holds the VM for
// a moment but is not worth a Warning event.
func Settling(reason, format string, args ...any) Check {
	check := Wait(reason, format, args...)
	check.Quiet = true
	return check
}

// Warns says whether the profile's first problem deserves a Warning event:
// one that needs the user, could not be checked, or holds the VM for a
// reason other than normal progress.
func Warns(o *Observed) bool {
	problem := o.firstProblem()
	if problem == nil {
		return Phase(o) == vmv1alpha1.PhaseError
	}
	return !problem.Quiet && (problem.Fatal || problem.Unknown || problem.Holds || problem.Warn)
}

// OnlyBrief says whether the first thing keeping the profile back is a
// brief wait: then nothing needs the user and no status is worth writing
// yet. In make bench a new profile's status was written three times in its
// two-second settle window as its claim and attachment appeared.
func OnlyBrief(o *Observed) bool {
	problem := o.firstProblem()
	return problem != nil && problem.Brief
}

// Holds says whether some failed check keeps the VM from being created.
func (o *Observed) Holds() bool {
	for _, check := range append(append([]Check{}, o.Blockers...), o.Networks, o.Volumes) {
		if check.Failed && check.Holds {
			return true
		}
	}
	return false
}

func vmiPhase(o *Observed) kubevirtv1.VirtualMachineInstancePhase {
	if o.VMI == nil {
		return ""
	}
	return o.VMI.Status.Phase
}

// Phase is the one-word summary of the profile.
func Phase(o *Observed) vmv1alpha1.Phase {
	if problem := o.firstProblem(); problem != nil && problem.Fatal {
		return vmv1alpha1.PhaseError
	}
	switch vmiPhase(o) {
	case kubevirtv1.Failed:
		return vmv1alpha1.PhaseError
	case kubevirtv1.Running:
		return vmv1alpha1.PhaseRunning
	}
	if o.VM == nil {
		return vmv1alpha1.PhasePending
	}
	if o.VMI == nil && (o.RunStrategy == vmv1alpha1.RunStrategyHalted ||
		o.RunStrategy == vmv1alpha1.RunStrategyManual ||
		o.VM.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped) {
		return vmv1alpha1.PhaseStopped
	}
	if vmiPhase(o) == kubevirtv1.Succeeded {
		return vmv1alpha1.PhaseStopped
	}
	return vmv1alpha1.PhaseCreating
}

func condition(conditionType string, ok bool, reason, message string) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: conditionType, Status: status, Reason: reason, Message: message}
}

// fromCheck is the condition a check stands for: True when it passed,
// Unknown when it could not be made, False otherwise.
func fromCheck(conditionType string, check Check) metav1.Condition {
	c := condition(conditionType, !check.Failed, check.Reason, check.Message)
	if check.Unknown {
		c.Status = metav1.ConditionUnknown
	}
	return c
}

// NetworksConfigured reflects attachments present and host policies applied.
func NetworksConfigured(o *Observed) metav1.Condition {
	return fromCheck(vmv1alpha1.ConditionNetworksConfigured, o.Networks)
}

// VolumesBound reflects every disk's claim bound and imported.
func VolumesBound(o *Observed) metav1.Condition {
	return fromCheck(vmv1alpha1.ConditionVolumesBound, o.Volumes)
}

// Ready is True when the VM runs and nothing is failing; otherwise it says
// why, naming the first problem.
func Ready(o *Observed) metav1.Condition {
	if problem := o.firstProblem(); problem != nil {
		return fromCheck(vmv1alpha1.ConditionReady, *problem)
	}
	switch Phase(o) {
	case vmv1alpha1.PhaseRunning:
		message := fmt.Sprintf("VM %s is running on node %s", o.VM.Name, o.VMI.Status.NodeName)
		if restartRequired(o.VM) {
			return condition(vmv1alpha1.ConditionReady, true, vmv1alpha1.ReasonRestartRequired,
				message+"; the spec changed in ways that take effect after a restart")
		}
		return condition(vmv1alpha1.ConditionReady, true, vmv1alpha1.ReasonVMRunning, message)
	case vmv1alpha1.PhaseStopped:
		return condition(vmv1alpha1.ConditionReady, false, vmv1alpha1.ReasonVMStopped, "VM is stopped (run strategy "+string(o.RunStrategy)+")")
	case vmv1alpha1.PhaseError:
		return condition(vmv1alpha1.ConditionReady, false, vmv1alpha1.ReasonVMFailed, "VM instance failed: "+vmiMessage(o.VMI))
	}
	if o.VM == nil {
		return condition(vmv1alpha1.ConditionReady, false, vmv1alpha1.ReasonReconciling, "creating the VM")
	}
	return condition(vmv1alpha1.ConditionReady, false, vmv1alpha1.ReasonVMNotRunning, "VM is starting: "+vmStartMessage(o))
}

// Scheduled says whether the VM has (or can get) a node: False when no node
// passes placement (with each excluded node's reason in status.placement),
// when antiAffinity cannot be met, or with the scheduler's word while the
// instance waits; True once it has a node or while eligible nodes exist.
// Nil when neither placement nor an instance has anything to say.
func Scheduled(o *Observed) *metav1.Condition {
	if o.Placement != nil && o.Placement.EligibleNodes == 0 {
		c := condition(vmv1alpha1.ConditionScheduled, false, vmv1alpha1.ReasonNoEligibleNodes, placementSummary(o.Placement))
		return &c
	}
	if o.SpreadShortage != "" && (o.VMI == nil || o.VMI.Status.NodeName == "") {
		c := condition(vmv1alpha1.ConditionScheduled, false, vmv1alpha1.ReasonTooFewNodes, o.SpreadShortage)
		return &c
	}
	if o.VMI == nil {
		if o.Placement == nil {
			return nil
		}
		c := condition(vmv1alpha1.ConditionScheduled, true, vmv1alpha1.ReasonNodesEligible,
			fmt.Sprintf("%d eligible node(s)", o.Placement.EligibleNodes))
		return &c
	}
	if o.VMI.Status.NodeName != "" {
		c := condition(vmv1alpha1.ConditionScheduled, true, vmv1alpha1.ReasonNodesEligible, "scheduled on node "+o.VMI.Status.NodeName)
		return &c
	}
	for _, c := range o.VMI.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceConditionType("PodScheduled") && c.Status == "False" {
			reason := vmv1alpha1.ReasonNoEligibleNodes
			if claimMissing(c.Message) {
				reason = vmv1alpha1.ReasonVolumesPending
			}
			unscheduled := condition(vmv1alpha1.ConditionScheduled, false, reason, c.Message)
			return &unscheduled
		}
	}
	// The instance waits for KubeVirt's scheduler: what placement found
	// still holds. (The condition used to vanish here, between "eligible"
	// and "scheduled on", one more status write per profile in make bench.)
	if o.Placement == nil {
		return nil
	}
	c := condition(vmv1alpha1.ConditionScheduled, true, vmv1alpha1.ReasonNodesEligible,
		fmt.Sprintf("%d eligible node(s)", o.Placement.EligibleNodes))
	return &c
}

// claimMissing says whether an instance's PodScheduled=False is KubeVirt
// waiting for a claim that does not exist yet, not a placement failure:
// virt-controller sets it, reason Unschedulable, when CDI has not made a
// DataVolume's claim yet (pkg/virt-controller/watch/vmi/lifecycle.go on a
// FailedPvcNotFound sync error, with the message of datavolumes.go
// areDataVolumesReady or of storagetypes.PvcNotFoundError). The reason does
// not tell them apart; only the message does.
func claimMissing(message string) bool {
	return strings.Contains(message, "does not exist, waiting for it to appear") || strings.Contains(message, "didn't find PVC")
}

// placementSummary names the first excluded nodes and their reasons.
func placementSummary(p *vmv1alpha1.PlacementStatus) string {
	parts := make([]string, 0, len(p.Excluded))
	for _, e := range p.Excluded {
		parts = append(parts, e.Node+": "+e.Reason)
	}
	message := fmt.Sprintf("no node can host the VM (0 of %d eligible)", p.ExcludedNodes)
	if len(parts) > 0 {
		message += ": " + strings.Join(parts, "; ")
	}
	if int(p.ExcludedNodes) > len(parts) {
		message += fmt.Sprintf("; and %d more", int(p.ExcludedNodes)-len(parts))
	}
	return message
}

func restartRequired(vm *kubevirtv1.VirtualMachine) bool {
	for _, c := range vm.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineRestartRequired && c.Status == "True" {
			return true
		}
	}
	return false
}

// RestartRequired surfaces KubeVirt's RestartRequired condition of the VM
// (set when a field it cannot change live changed: CPU cores, memory, a
// disk, a NIC), or nil when KubeVirt does not report it.
func RestartRequired(o *Observed) *metav1.Condition {
	if o.VM == nil || !restartRequired(o.VM) {
		return nil
	}
	c := condition(vmv1alpha1.ConditionRestartRequired, true, vmv1alpha1.ReasonRestartRequired,
		"the VM runs with an older spec; restart it to apply the change")
	return &c
}

func vmiMessage(vmi *kubevirtv1.VirtualMachineInstance) string {
	if vmi == nil {
		return "no details"
	}
	for _, c := range vmi.Status.Conditions {
		if c.Message != "" {
			return c.Message
		}
	}
	return "phase " + string(vmi.Status.Phase)
}

func vmStartMessage(o *Observed) string {
	if o.VMI != nil {
		return "instance phase " + string(o.VMI.Status.Phase)
	}
	if o.VM.Status.PrintableStatus != "" {
		return strings.ToLower(string(o.VM.Status.PrintableStatus))
	}
	return "waiting for KubeVirt"
}
