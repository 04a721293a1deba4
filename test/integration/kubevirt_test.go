package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// The simulator's switches (test/simulator/faults.go) make KubeVirt fail as
// it does upstream; these tests hold the operator to reading each failure.

func switchOn(t *testing.T, namespace, name, value string) {
	t.Helper()
	if err := simulator.SetSwitch(context.Background(), cluster.Client, namespace, name, value); err != nil {
		t.Fatal(err)
	}
}

// waitForReady waits until the profile's Ready condition has the reason and
// a message containing want, and returns the profile.
func waitForReady(t *testing.T, namespace, name, reason, want string, timeout time.Duration) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, timeout, fmt.Sprintf("%s Ready %s %q", name, reason, want), func() (bool, string) {
		p = getProfile(t, namespace, name)
		for _, c := range p.Status.Conditions {
			if c.Type == vmv1alpha1.ConditionReady && c.Reason == reason && strings.Contains(c.Message, want) {
				return true, ""
			}
		}
		return false, observe.Describe(p)
	})
	return p
}

func getVM(t *testing.T, namespace, name string) *kubevirtv1.VirtualMachine {
	t.Helper()
	var vm kubevirtv1.VirtualMachine
	if !getObject(t, &vm, namespace, name) {
		t.Fatalf("no VirtualMachine %s/%s", namespace, name)
	}
	return &vm
}

// TestVMICreateRefusedIsAnError: virt-controller cannot create the
// instance; KubeVirt reports the VM Stopped with Failure=True. The profile
// is an Error with KubeVirt's message and a Warning, not Stopped.
func TestVMICreateRefusedIsAnError(t *testing.T) {
	ns := newNamespace(t)
	switchOn(t, ns, simulator.SwitchVMICreate, simulator.VMICreateRefused)
	create(t, profile("refused", ns))
	p := waitForReady(t, ns, "refused", vmv1alpha1.ReasonVMStartFailed, "failure while starting VMI", 30*time.Second)
	if p.Status.Phase != vmv1alpha1.PhaseError {
		t.Fatalf("phase %s, want Error: %s", p.Status.Phase, observe.Describe(p))
	}
	if vm := getVM(t, ns, "refused-vm"); vm.Status.PrintableStatus != kubevirtv1.VirtualMachineStatusStopped {
		t.Fatalf("the stand-in should report Stopped as KubeVirt does, got %s", vm.Status.PrintableStatus)
	}
	expectEvent(t, ns, "refused", vmv1alpha1.ReasonVMStartFailed)

	switchOn(t, ns, simulator.SwitchVMICreate, "")
	touchVM(t, ns, "refused-vm") // the switch is not watched: wake the stand-in
	waitForPhase(t, ns, "refused", vmv1alpha1.PhaseRunning)
}

// touchVM wakes the simulated virt-controller for a VM by annotating it.
func touchVM(t *testing.T, namespace, name string) {
	t.Helper()
	vm := getVM(t, namespace, name)
	patch := client.MergeFrom(vm.DeepCopy())
	if vm.Annotations == nil {
		vm.Annotations = map[string]string{}
	}
	vm.Annotations["simulator.vmoperator.test/touched"] = time.Now().Format(time.RFC3339Nano)
	if err := cluster.Client.Patch(context.Background(), vm, patch); err != nil {
		t.Fatal(err)
	}
}

// TestStartFailuresBackOffAsCrashLoop: every instance fails before it
// runs. The VM backs off (CrashLoopBackOff, no instance), the profile is an
// Error saying so with a Warning, and once the cause is gone the next
// start, not an earlier one, runs it.
func TestStartFailuresBackOffAsCrashLoop(t *testing.T) {
	ns := newNamespace(t)
	switchOn(t, ns, simulator.SwitchVMIStart, simulator.VMIStartFails)
	create(t, profile("crash", ns))
	p := waitForReady(t, ns, "crash", vmv1alpha1.ReasonVMCrashLoopBackOff, "failed 1 time(s) in a row", 30*time.Second)
	if p.Status.Phase != vmv1alpha1.PhaseError {
		t.Fatalf("phase %s, want Error: %s", p.Status.Phase, observe.Describe(p))
	}
	expectEvent(t, ns, "crash", vmv1alpha1.ReasonVMCrashLoopBackOff)
	vm := getVM(t, ns, "crash-vm")
	if vm.Status.PrintableStatus != kubevirtv1.VirtualMachineStatusCrashLoopBackOff || vm.Status.StartFailure == nil || vm.Status.StartFailure.RetryAfterTimestamp == nil {
		t.Fatalf("VM status: %s %+v", vm.Status.PrintableStatus, vm.Status.StartFailure)
	}
	retryAfter := vm.Status.StartFailure.RetryAfterTimestamp.Time

	switchOn(t, ns, simulator.SwitchVMIStart, "")
	observe.Eventually(t, 45*time.Second, "crash Running after the backoff", func() (bool, string) {
		p = getProfile(t, ns, "crash")
		return p.Status.Phase == vmv1alpha1.PhaseRunning, observe.Describe(p)
	})
	var vmi kubevirtv1.VirtualMachineInstance
	if !getObject(t, &vmi, ns, "crash-vm") {
		t.Fatal("no instance")
	}
	// Timestamps have one-second resolution.
	if vmi.CreationTimestamp.Add(time.Second).Before(retryAfter) {
		t.Fatalf("instance created at %v, before the backoff ended at %v", vmi.CreationTimestamp.Time, retryAfter)
	}
	if vm = getVM(t, ns, "crash-vm"); vm.Status.StartFailure != nil {
		t.Fatalf("a running instance clears the start failures: %+v", vm.Status.StartFailure)
	}
}

// TestImagePullFailureIsAnError: the node cannot pull the osImage container
// disk. The instance stays Scheduling; the profile is an Error with the
// kubelet's message and a Warning, not Creating.
func TestImagePullFailureIsAnError(t *testing.T) {
	ns := newNamespace(t)
	switchOn(t, ns, simulator.SwitchImagePull, simulator.ImagePullBackOff)
	create(t, profile("pull", ns, withImage("registry.example.com/nope:1")))
	p := waitForReady(t, ns, "pull", vmv1alpha1.ReasonVMImagePullFailed, "Back-off pulling image", 30*time.Second)
	if p.Status.Phase != vmv1alpha1.PhaseError || !strings.Contains(conditionMessage(p, vmv1alpha1.ConditionReady), "ImagePullBackOff") {
		t.Fatalf("want Error naming ImagePullBackOff: %s", observe.Describe(p))
	}
	var vmi kubevirtv1.VirtualMachineInstance
	if !getObject(t, &vmi, ns, "pull-vm") || vmi.Status.Phase != kubevirtv1.Scheduling {
		t.Fatalf("instance phase %s, want Scheduling", vmi.Status.Phase)
	}
	expectEvent(t, ns, "pull", vmv1alpha1.ReasonVMImagePullFailed)
}

// TestInstanceWaitsPendingForAMissingClaim: an instance whose claim does not exist stays Pending and unscheduled, and
// the VM reports ErrorPvcNotFound, as virt-controller does while CDI has
// not made the claim yet. (The VM is written here, not by the operator,
// which only makes a VM once its claims are asked for.)
func TestInstanceWaitsPendingForAMissingClaim(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	always := kubevirtv1.RunStrategyAlways
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "claimless", Namespace: ns}, Spec: kubevirtv1.VirtualMachineSpec{
		RunStrategy: &always,
		Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
			Domain:  kubevirtv1.DomainSpec{Devices: kubevirtv1.Devices{Disks: []kubevirtv1.Disk{{Name: "root"}}}},
			Volumes: []kubevirtv1.Volume{{Name: "root", VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: "later"}}}},
		}},
	}}
	create(t, vm)
	want := "PVC " + ns + "/later does not exist, waiting for it to appear"
	observe.Eventually(t, 30*time.Second, "instance Pending for its claim", func() (bool, string) {
		var vmi kubevirtv1.VirtualMachineInstance
		if !getObject(t, &vmi, ns, "claimless") {
			return false, "no instance"
		}
		got := getVM(t, ns, "claimless")
		scheduled := vmCondition(got, "PodScheduled")
		return vmi.Status.Phase == kubevirtv1.Pending && vmi.Status.NodeName == "" &&
				got.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusPvcNotFound && scheduled != nil && scheduled.Message == want,
			fmt.Sprintf("instance %s on %q, VM %s %+v", vmi.Status.Phase, vmi.Status.NodeName, got.Status.PrintableStatus, got.Status.Conditions)
	})
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: ns}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	if err := cluster.Client.Create(ctx, claim); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "instance runs once its claim exists", func() (bool, string) {
		got := getVM(t, ns, "claimless")
		return got.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusRunning, string(got.Status.PrintableStatus)
	})
}

func vmCondition(vm *kubevirtv1.VirtualMachine, t kubevirtv1.VirtualMachineConditionType) *kubevirtv1.VirtualMachineCondition {
	for i := range vm.Status.Conditions {
		if vm.Status.Conditions[i].Type == t {
			return &vm.Status.Conditions[i]
		}
	}
	return nil
}

// TestWithoutGuestAgentTheStaticAddressStands: KubeVirt reports a
// secondary interface's address only from qemu-guest-agent. Without it a
// static network shows its configured address (ipSource Spec) and a DHCP
// network shows none, while the MAC still comes from KubeVirt.
func TestWithoutGuestAgentTheStaticAddressStands(t *testing.T) {
	ns := newNamespace(t)
	switchOn(t, ns, simulator.SwitchGuestAgent, simulator.GuestAgentAbsent)
	p := profile("agentless", ns, withStaticIP("10.77.0.5/24"))
	p.Spec.Networks = append(p.Spec.Networks, vmv1alpha1.NetworkConfig{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge,
		IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}})
	create(t, p)
	p = waitForPhase(t, ns, "agentless", vmv1alpha1.PhaseRunning)
	var vmi kubevirtv1.VirtualMachineInstance
	if !getObject(t, &vmi, ns, "agentless-vm") || len(vmi.Status.Interfaces) != 2 || vmi.Status.Interfaces[0].IP != "" || vmi.Status.Interfaces[0].MAC == "" {
		t.Fatalf("without the agent KubeVirt reports MACs and no address: %+v", vmi.Status.Interfaces)
	}
	static, dhcp := p.Status.Networks[0], p.Status.Networks[1]
	if static.IPAddress != "10.77.0.5/24" || static.IPSource != vmv1alpha1.IPSourceSpec || static.MACAddress != vmi.Status.Interfaces[0].MAC {
		t.Errorf("static network: %+v", static)
	}
	if dhcp.IPAddress != "" || dhcp.IPSource != "" || dhcp.MACAddress != vmi.Status.Interfaces[1].MAC {
		t.Errorf("DHCP network without the agent shows no address: %+v", dhcp)
	}
}

// TestRunStrategiesRestartAsKubeVirtDoes: the instance ends; what follows
// is the run strategy's rule (vm.go syncRunStrategy). Always runs a new
// instance after a crash or a shutdown; RerunOnFailure after a crash only,
// a clean shutdown leaves the profile Stopped; Once never restarts.
func TestRunStrategiesRestartAsKubeVirtDoes(t *testing.T) {
	cases := []struct {
		policy   vmv1alpha1.RestartPolicy
		end      kubevirtv1.VirtualMachineInstancePhase
		restarts bool
		phase    vmv1alpha1.Phase
	}{
		{vmv1alpha1.RestartAlways, kubevirtv1.Failed, true, vmv1alpha1.PhaseRunning},
		{vmv1alpha1.RestartAlways, kubevirtv1.Succeeded, true, vmv1alpha1.PhaseRunning},
		{vmv1alpha1.RestartOnFailure, kubevirtv1.Failed, true, vmv1alpha1.PhaseRunning},
		{vmv1alpha1.RestartOnFailure, kubevirtv1.Succeeded, false, vmv1alpha1.PhaseStopped},
		{vmv1alpha1.RestartNever, kubevirtv1.Failed, false, vmv1alpha1.PhaseError},
		{vmv1alpha1.RestartNever, kubevirtv1.Succeeded, false, vmv1alpha1.PhaseStopped},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.policy, c.end), func(t *testing.T) {
			ctx := context.Background()
			ns := newNamespace(t)
			name := strings.ToLower(string(c.policy))
			p := profile(name, ns)
			p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{RestartPolicy: c.policy}
			create(t, p)
			waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
			key := client.ObjectKey{Namespace: ns, Name: name + "-vm"}
			var first kubevirtv1.VirtualMachineInstance
			if err := cluster.Client.Get(ctx, key, &first); err != nil {
				t.Fatal(err)
			}
			if err := simulator.EndInstance(ctx, cluster.Client, key, c.end); err != nil {
				t.Fatal(err)
			}
			observe.Eventually(t, 30*time.Second, fmt.Sprintf("%s after the instance %s", c.phase, c.end), func() (bool, string) {
				got := getProfile(t, ns, name)
				var vmi kubevirtv1.VirtualMachineInstance
				exists := getObject(t, &vmi, ns, key.Name)
				restarted := exists && vmi.UID != first.UID && vmi.Status.Phase == kubevirtv1.Running
				return got.Status.Phase == c.phase && restarted == c.restarts,
					fmt.Sprintf("%s; instance exists=%v new=%v phase=%s", observe.Describe(got), exists, exists && vmi.UID != first.UID, vmi.Status.Phase)
			})
			if c.phase == vmv1alpha1.PhaseError {
				expectEvent(t, ns, name, vmv1alpha1.ReasonVMFailed) // the crash, once
			}
			// Nothing more follows: a VM that stays down stays down.
			time.Sleep(2 * time.Second)
			if got := getProfile(t, ns, name); got.Status.Phase != c.phase {
				t.Fatalf("phase moved on to %s", got.Status.Phase)
			}
		})
	}
}

// TestRestartRequiredForCoreDiskAndNICChanges: KubeVirt asks for a restart
// when a field it cannot change live changes (vm.go syncRestartRequired),
// not only the CPU: a NIC's MAC, a disk added, memory. The profile shows it.
func TestRestartRequiredForCoreDiskAndNICChanges(t *testing.T) {
	cases := map[string]func(*vmv1alpha1.VirtualMachineProfile){
		"nic":    func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Networks[0].MACAddress = "02:00:00:aa:bb:01" },
		"disk":   withDisk("extra", "1Gi", "huamei-sc-ssd", vmv1alpha1.RetainPolicyDelete),
		"memory": func(p *vmv1alpha1.VirtualMachineProfile) { p.Spec.Memory = "2Gi" },
	}
	for change, edit := range cases {
		t.Run(change, func(t *testing.T) {
			ns := newNamespace(t)
			name := "edit-" + change
			create(t, profile(name, ns))
			waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
			p := getProfile(t, ns, name)
			edit(p)
			if err := cluster.Client.Update(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			waitForCondition(t, ns, name, vmv1alpha1.ConditionRestartRequired, metav1.ConditionTrue, vmv1alpha1.ReasonRestartRequired)
		})
	}
}

// TestLiveChangesNeedNoRestart: an affinity change (a node selector) is
// applied live under KubeVirt's default LiveUpdate rollout: no restart.
func TestLiveChangesNeedNoRestart(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("live", ns))
	waitForPhase(t, ns, "live", vmv1alpha1.PhaseRunning)
	p := getProfile(t, ns, "live")
	p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{"kubernetes.io/arch": "amd64"}}
	if err := cluster.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "node selector on the VM", func() (bool, string) {
		vm := getVM(t, ns, "live-vm")
		return vm.Spec.Template.Spec.NodeSelector["kubernetes.io/arch"] == "amd64", fmt.Sprint(vm.Spec.Template.Spec.NodeSelector)
	})
	time.Sleep(2 * time.Second)
	if vm := getVM(t, ns, "live-vm"); vmCondition(vm, kubevirtv1.VirtualMachineRestartRequired) != nil {
		t.Fatalf("a node selector change is live: %+v", vm.Status.Conditions)
	}
}
