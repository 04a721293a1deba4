package status

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func vm(printable kubevirtv1.VirtualMachinePrintableStatus, conditions ...kubevirtv1.VirtualMachineCondition) *kubevirtv1.VirtualMachine {
	v := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "p-vm"}}
	v.Status.PrintableStatus, v.Status.Conditions = printable, conditions
	return v
}

func vmi(phase kubevirtv1.VirtualMachineInstancePhase, node string) *kubevirtv1.VirtualMachineInstance {
	v := &kubevirtv1.VirtualMachineInstance{}
	v.Status.Phase, v.Status.NodeName = phase, node
	return v
}

func TestPhaseAndReady(t *testing.T) {
	pending := Check{Failed: true, Reason: vmv1alpha1.ReasonVolumesPending, Message: "claim pending"}
	cases := []struct {
		name       string
		observed   Observed
		phase      vmv1alpha1.Phase
		ready      metav1.ConditionStatus
		readyWhy   string
		holdsTheVM bool
	}{
		{"nothing yet", Observed{}, vmv1alpha1.PhasePending, metav1.ConditionFalse, vmv1alpha1.ReasonReconciling, false},
		{"NAD missing holds the VM", Observed{Networks: Wait(vmv1alpha1.ReasonNADMissing, "nad x missing")},
			vmv1alpha1.PhasePending, metav1.ConditionFalse, vmv1alpha1.ReasonNADMissing, true},
		{"name clash is an error", Observed{Blockers: []Check{Problem(vmv1alpha1.ReasonNameConflict, "pvc x")}},
			vmv1alpha1.PhaseError, metav1.ConditionFalse, vmv1alpha1.ReasonNameConflict, true},
		{"fatal beats waiting in Ready", Observed{Networks: Wait(vmv1alpha1.ReasonNADMissing, "x"), Volumes: Problem(vmv1alpha1.ReasonImportFailed, "y")},
			vmv1alpha1.PhaseError, metav1.ConditionFalse, vmv1alpha1.ReasonImportFailed, true},
		{"pending volume does not hold the VM", Observed{Volumes: pending, VM: vm(kubevirtv1.VirtualMachineStatusStarting)},
			vmv1alpha1.PhaseCreating, metav1.ConditionFalse, vmv1alpha1.ReasonVolumesPending, false},
		{"instance scheduling", Observed{VM: vm(kubevirtv1.VirtualMachineStatusStarting), VMI: vmi(kubevirtv1.Scheduling, "")},
			vmv1alpha1.PhaseCreating, metav1.ConditionFalse, vmv1alpha1.ReasonVMNotRunning, false},
		{"running", Observed{VM: vm(kubevirtv1.VirtualMachineStatusRunning), VMI: vmi(kubevirtv1.Running, "node-a")},
			vmv1alpha1.PhaseRunning, metav1.ConditionTrue, vmv1alpha1.ReasonVMRunning, false},
		{"running, restart required", Observed{VM: vm(kubevirtv1.VirtualMachineStatusRunning, kubevirtv1.VirtualMachineCondition{
			Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue}), VMI: vmi(kubevirtv1.Running, "node-a")},
			vmv1alpha1.PhaseRunning, metav1.ConditionTrue, vmv1alpha1.ReasonRestartRequired, false},
		{"halted", Observed{RunStrategy: vmv1alpha1.RunStrategyHalted, VM: vm(kubevirtv1.VirtualMachineStatusStopped)},
			vmv1alpha1.PhaseStopped, metav1.ConditionFalse, vmv1alpha1.ReasonVMStopped, false},
		{"instance failed", Observed{RunStrategy: vmv1alpha1.RunStrategyOnce, VM: vm(kubevirtv1.VirtualMachineStatusStopped), VMI: vmi(kubevirtv1.Failed, "node-a")},
			vmv1alpha1.PhaseError, metav1.ConditionFalse, vmv1alpha1.ReasonVMFailed, false},
		{"run once, finished", Observed{RunStrategy: vmv1alpha1.RunStrategyOnce, VM: vm(kubevirtv1.VirtualMachineStatusStopped), VMI: vmi(kubevirtv1.Succeeded, "node-a")},
			vmv1alpha1.PhaseStopped, metav1.ConditionFalse, vmv1alpha1.ReasonVMStopped, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Phase(&c.observed); got != c.phase {
				t.Errorf("phase %s, want %s", got, c.phase)
			}
			ready := Ready(&c.observed)
			if ready.Status != c.ready || ready.Reason != c.readyWhy {
				t.Errorf("Ready %s/%s, want %s/%s (%s)", ready.Status, ready.Reason, c.ready, c.readyWhy, ready.Message)
			}
			if got := c.observed.Holds(); got != c.holdsTheVM {
				t.Errorf("holds the VM: %v, want %v", got, c.holdsTheVM)
			}
		})
	}
}

func TestScheduledAndRestartRequired(t *testing.T) {
	if Scheduled(&Observed{}) != nil {
		t.Fatal("no instance: no Scheduled condition")
	}
	waiting := vmi(kubevirtv1.Scheduling, "")
	waiting.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{Type: "PodScheduled", Status: corev1.ConditionFalse, Message: "0/3 nodes are available"}}
	if c := Scheduled(&Observed{VMI: waiting}); c == nil || c.Status != metav1.ConditionFalse || c.Message != "0/3 nodes are available" {
		t.Fatalf("unscheduled: %+v", c)
	}
	if c := Scheduled(&Observed{VMI: vmi(kubevirtv1.Running, "node-b")}); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("scheduled: %+v", c)
	}
	// Between placement and KubeVirt's scheduler the condition keeps what
	// placement found (it used to vanish: one status write more).
	eligible := &vmv1alpha1.PlacementStatus{EligibleNodes: 3}
	if c := Scheduled(&Observed{VMI: vmi(kubevirtv1.Scheduling, ""), Placement: eligible}); c == nil || c.Status != metav1.ConditionTrue || c.Message != "3 eligible node(s)" {
		t.Fatalf("waiting for the scheduler: %+v", c)
	}
	if RestartRequired(&Observed{VM: vm(kubevirtv1.VirtualMachineStatusRunning)}) != nil {
		t.Fatal("no RestartRequired without KubeVirt's condition")
	}
}

func TestNetworksFallsBackToTheConfiguredAddress(t *testing.T) {
	profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	profile.Spec.Networks = []vmv1alpha1.NetworkConfig{
		{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("192.168.100.10/24")}},
		{Name: "biz", Type: vmv1alpha1.NetworkTypeSRIOV, IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}},
	}
	before := Networks(profile, nil, nil)
	if before[0].IPAddress != "192.168.100.10/24" || before[0].IPSource != vmv1alpha1.IPSourceSpec || before[1].IPAddress != "" {
		t.Fatalf("before the guest reports: %+v", before)
	}
	running := vmi(kubevirtv1.Running, "n")
	running.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "mgmt", IP: "192.168.100.10", MAC: "02:00:00:00:00:01", InterfaceName: "eth0"},
		{Name: "biz", IP: "10.0.0.7", MAC: "02:00:00:00:00:02", InterfaceName: "eth1"},
	}
	after := Networks(profile, running, nil)
	if after[0].IPAddress != "192.168.100.10/24" || after[0].IPSource != vmv1alpha1.IPSourceGuest || after[0].MACAddress != "02:00:00:00:00:01" {
		t.Fatalf("mgmt: %+v", after[0])
	}
	if after[1].IPAddress != "10.0.0.7" || after[1].IPSource != vmv1alpha1.IPSourceGuest || after[1].Interface != "eth1" {
		t.Fatalf("biz: %+v", after[1])
	}
}

func synchronizedFalse(reason, message string) kubevirtv1.VirtualMachineCondition {
	return kubevirtv1.VirtualMachineCondition{Type: kubevirtv1.VirtualMachineConditionType(kubevirtv1.VirtualMachineInstanceSynchronized),
		Status: corev1.ConditionFalse, Reason: reason, Message: message}
}

// TestKubeVirtFailuresTakePrecedence: what KubeVirt says is wrong with the
// VM wins over the instance's phase and over Stopped, with the VM's own
// message; a VM that cannot start is an Error, one waiting for the cluster
// stays Creating; each warns unless it is normal progress.
func TestKubeVirtFailuresTakePrecedence(t *testing.T) {
	refused := vm(kubevirtv1.VirtualMachineStatusStopped, kubevirtv1.VirtualMachineCondition{Type: kubevirtv1.VirtualMachineFailure,
		Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "failure while starting VMI: quota exceeded"})
	pulling := vm(kubevirtv1.VirtualMachineStatusErrImagePull, synchronizedFalse("ErrImagePull", "failed to pull image \"x\": not found"))
	crashing := vm(kubevirtv1.VirtualMachineStatusCrashLoopBackOff)
	crashing.Status.StartFailure = &kubevirtv1.VirtualMachineStartFailure{ConsecutiveFailCount: 2}
	unschedulable := vm(kubevirtv1.VirtualMachineStatusUnschedulable, kubevirtv1.VirtualMachineCondition{Type: "PodScheduled",
		Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"})
	noClaim := vm(kubevirtv1.VirtualMachineStatusPvcNotFound, synchronizedFalse("FailedPvcNotFound", "PVC ns/p-root does not exist, waiting for it to appear"))
	retrying := Check{Failed: true, Reason: "ImportRetrying", Message: "CDI: importer failed: 404"}
	cases := []struct {
		name     string
		observed Observed
		phase    vmv1alpha1.Phase
		reason   string
		message  string
		warns    bool
	}{
		{"create refused is not Stopped", Observed{VM: refused}, vmv1alpha1.PhaseError, vmv1alpha1.ReasonVMStartFailed, "quota exceeded", true},
		{"image pull beats Scheduling", Observed{VM: pulling, VMI: vmi(kubevirtv1.Scheduling, "")}, vmv1alpha1.PhaseError, vmv1alpha1.ReasonVMImagePullFailed, "not found", true},
		{"crash loop is not Creating", Observed{VM: crashing}, vmv1alpha1.PhaseError, vmv1alpha1.ReasonVMCrashLoopBackOff, "failed 2 time(s) in a row", true},
		{"crash loop beats the failed instance", Observed{VM: crashing, VMI: vmi(kubevirtv1.Failed, "node-a")}, vmv1alpha1.PhaseError, vmv1alpha1.ReasonVMCrashLoopBackOff, "KubeVirt waits", true},
		{"DataVolumeError says what VolumesBound says", Observed{VM: vm(kubevirtv1.VirtualMachineStatusDataVolumeError), Volumes: retrying, VMI: vmi(kubevirtv1.Pending, "")},
			vmv1alpha1.PhaseError, "ImportRetrying", "404", true},
		{"DataVolumeError alone", Observed{VM: vm(kubevirtv1.VirtualMachineStatusDataVolumeError)}, vmv1alpha1.PhaseError, vmv1alpha1.ReasonImportFailed, "DataVolumeError", true},
		{"unschedulable waits and warns", Observed{VM: unschedulable, VMI: vmi(kubevirtv1.Scheduling, "")}, vmv1alpha1.PhaseCreating, vmv1alpha1.ReasonNoEligibleNodes, "0/3 nodes", true},
		{"missing claim while disks are prepared", Observed{VM: noClaim, VMI: vmi(kubevirtv1.Pending, ""), Volumes: Check{Failed: true, Reason: vmv1alpha1.ReasonImportInProgress, Message: "importing"}},
			vmv1alpha1.PhaseCreating, vmv1alpha1.ReasonImportInProgress, "importing", false},
		{"missing claim after the disks were ready", Observed{VM: noClaim, VMI: vmi(kubevirtv1.Pending, "")}, vmv1alpha1.PhaseCreating, vmv1alpha1.ReasonVolumesPending, "does not exist", true},
		{"a running VM ignores a stale failure", Observed{VM: vm(kubevirtv1.VirtualMachineStatusRunning, refused.Status.Conditions...), VMI: vmi(kubevirtv1.Running, "node-a")},
			vmv1alpha1.PhaseRunning, vmv1alpha1.ReasonVMRunning, "running", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Phase(&c.observed); got != c.phase {
				t.Errorf("phase %s, want %s", got, c.phase)
			}
			ready := Ready(&c.observed)
			if ready.Reason != c.reason || !strings.Contains(ready.Message, c.message) {
				t.Errorf("Ready %s %q, want %s with %q", ready.Reason, ready.Message, c.reason, c.message)
			}
			if got := Warns(&c.observed); got != c.warns {
				t.Errorf("warns %v, want %v", got, c.warns)
			}
			if c.observed.Holds() {
				t.Error("what KubeVirt reports never holds the VM: the operator keeps applying it")
			}
		})
	}
}
