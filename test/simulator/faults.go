package simulator

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Switches turn on, per namespace, a way KubeVirt fails that the simulator
// does not play by default. A test sets one as an annotation on its
// namespace (SetSwitch) before it creates the profile; every VM and
// instance in that namespace then fails that way. Each switch names the
// upstream file whose behaviour it follows; docs/fidelity.md lists them.
const (
	// SwitchGuestAgent "absent": the guests run without qemu-guest-agent.
	// Follows pkg/network/setup/netstat.go: a secondary interface's status
	// gets its name and MAC from the domain and Multus, and an address
	// only from the guest agent; without it the interface has no IP and no
	// guest interface name.
	SwitchGuestAgent = "simulator.vmoperator.test/guest-agent"
	// SwitchVMICreate "refused": virt-controller's create of the instance
	// is refused (an admission webhook, a quota). Follows
	// pkg/virt-controller/watch/vm/vm.go (syncRunStrategy, startVMI,
	// processFailureCondition): no instance, the VM's condition
	// Failure=True (reason FailedCreate, the error as its message), and
	// printableStatus Stopped, since no start is expected.
	SwitchVMICreate = "simulator.vmoperator.test/vmi-create"
	// SwitchVMIStart "fails": every instance fails before it ever runs
	// (virt-launcher or QEMU cannot start). Follows
	// pkg/virt-controller/watch/vm/vm.go (syncStartFailureStatus,
	// isVirtualMachineStatusCrashLoopBackOff): the VM counts the start
	// failure, waits out the start backoff with no instance
	// (printableStatus CrashLoopBackOff), then tries again.
	SwitchVMIStart = "simulator.vmoperator.test/vmi-start"
	// SwitchImagePull "ErrImagePull" or "ImagePullBackOff": the image of a
	// containerDisk volume cannot be pulled. Follows
	// pkg/virt-controller/watch/vmi/lifecycle.go
	// (checkForContainerImageError): the instance stays Scheduling with
	// Synchronized=False and the kubelet's reason, which the VM's
	// printableStatus repeats (vm.go, isVirtualMachineStatusErrImagePull).
	SwitchImagePull = "simulator.vmoperator.test/image-pull"
)

// Values of the switches.
const (
	GuestAgentAbsent        = "absent"
	VMICreateRefused        = "refused"
	VMIStartFails           = "fails"
	ImagePullErr            = "ErrImagePull"
	ImagePullBackOff        = "ImagePullBackOff"
	startBackoffUnit        = 10 * time.Second
	maxStartBackoff         = 300 * time.Second
	reasonFailedCreate      = "FailedCreate"
	reasonFailedPvcNotFound = "FailedPvcNotFound"
)

// switches are the annotations of a namespace that turn failures on.
type switches map[string]string

func (s *Simulator) switchesOf(ctx context.Context, namespace string) (switches, error) {
	var ns corev1.Namespace
	if err := s.client.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return nil, client.IgnoreNotFound(fmt.Errorf("read the switches of namespace %s: %w", namespace, err))
	}
	return switches(ns.Annotations), nil
}

func (w switches) on(name, value string) bool { return w[name] == value }

// SetSwitch turns a switch on for every VM of namespace (value "" turns it off).
func SetSwitch(ctx context.Context, c client.Client, namespace, name, value string) error {
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	if value == "" {
		delete(ns.Annotations, name)
	} else {
		ns.Annotations[name] = value
	}
	if err := c.Patch(ctx, &ns, patch); err != nil {
		return fmt.Errorf("set switch %s=%q on namespace %s: %w", name, value, namespace, err)
	}
	return nil
}

// EndInstance ends a running instance as virt-handler reports a guest that
// crashed (phase Failed) or shut itself down (phase Succeeded). The VM then
// follows its run strategy, as vm.go's syncRunStrategy does: Always starts
// a new instance, RerunOnFailure only after a failure, Once and Manual
// never.
func EndInstance(ctx context.Context, c client.Client, key client.ObjectKey, phase kubevirtv1.VirtualMachineInstancePhase) error {
	if phase != kubevirtv1.Failed && phase != kubevirtv1.Succeeded {
		return fmt.Errorf("end VirtualMachineInstance %s: phase %s is not final", key, phase)
	}
	var vmi kubevirtv1.VirtualMachineInstance
	if err := c.Get(ctx, key, &vmi); err != nil {
		return fmt.Errorf("read VirtualMachineInstance %s: %w", key, err)
	}
	vmi.Status.Phase = phase
	vmi.Status.PhaseTransitionTimestamps = append(vmi.Status.PhaseTransitionTimestamps,
		kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: metav1.Now()})
	vmi.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{notReady("PodTerminating", "virt-launcher pod is terminating")}
	if err := c.Update(ctx, &vmi); err != nil {
		return fmt.Errorf("end VirtualMachineInstance %s as %s: %w", key, phase, err)
	}
	return nil
}

func notReady(reason, message string) kubevirtv1.VirtualMachineInstanceCondition {
	return kubevirtv1.VirtualMachineInstanceCondition{Type: kubevirtv1.VirtualMachineInstanceReady, Status: corev1.ConditionFalse, Reason: reason, Message: message}
}

// startBackoff is how long the VM waits before starting again after its
// failures-th consecutive start failure: ten seconds times the square of
// the count, at most five minutes, as vm.go's calculateStartBackoffTime
// (which adds up to half again at random; the simulator does not, so
// tests know the wait).
func startBackoff(failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	delay := startBackoffUnit * time.Duration(failures*failures)
	if delay > maxStartBackoff {
		return maxStartBackoff
	}
	return delay
}
