package simulator

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func (s *Simulator) setupVMs(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-virt-controller").
		For(&kubevirtv1.VirtualMachine{}).
		Owns(&kubevirtv1.VirtualMachineInstance{}).
		// A DataVolume's error shows in its VMs' printableStatus.
		Watches(&cdiv1.DataVolume{}, handler.EnqueueRequestsFromMapFunc(s.vmsInNamespace)).
		Complete(ctrlFunc(s.reconcileVM))
	if err != nil {
		return fmt.Errorf("set up controller sim-virt-controller: %w", err)
	}
	return nil
}

func (s *Simulator) vmsInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var vms kubevirtv1.VirtualMachineList
	if err := s.client.List(ctx, &vms, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(vms.Items))
	for i := range vms.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&vms.Items[i])})
	}
	return requests
}

// vmSync is what one pass of the simulated virt-controller did to a VM.
type vmSync struct {
	// created: an instance was just created (KubeVirt's start expectation).
	created bool
	// deleted: the instance was just deleted (a stop or a restart).
	deleted bool
	// ended is the instance just deleted, whose end still counts as a
	// start failure when it never ran.
	ended *kubevirtv1.VirtualMachineInstance
	// failure is the error of a refused instance create, "" for none.
	failure string
	// retryAfter is when a VM in start backoff tries again; zero for none.
	retryAfter time.Duration
}

// reconcileVM plays virt-controller's VM controller
// (pkg/virt-controller/watch/vm/vm.go): it starts and stops the instance
// as the run strategy says, backs off after start failures, and keeps the
// VM's status (printableStatus, conditions, start failures) as KubeVirt does.
func (s *Simulator) reconcileVM(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vm kubevirtv1.VirtualMachine
	if err := s.client.Get(ctx, req.NamespacedName, &vm); err != nil || !vm.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var vmi *kubevirtv1.VirtualMachineInstance
	var current kubevirtv1.VirtualMachineInstance
	if err := s.client.Get(ctx, req.NamespacedName, &current); err == nil {
		vmi = &current
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("get VirtualMachineInstance %s: %w", req.NamespacedName, err)
	}
	set, err := s.switchesOf(ctx, vm.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	sync, err := s.syncRunStrategy(ctx, &vm, vmi, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	if sync.deleted {
		vmi = nil
	}
	dataVolumeError, err := s.dataVolumeError(ctx, &vm)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := s.writeVMStatus(ctx, &vm, vmi, sync, dataVolumeError); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: sync.retryAfter}, nil
}

func runStrategyOf(vm *kubevirtv1.VirtualMachine) kubevirtv1.VirtualMachineRunStrategy {
	if vm.Spec.RunStrategy == nil {
		return kubevirtv1.RunStrategyHalted
	}
	return *vm.Spec.RunStrategy
}

func isFinal(vmi *kubevirtv1.VirtualMachineInstance) bool {
	return vmi.Status.Phase == kubevirtv1.Failed || vmi.Status.Phase == kubevirtv1.Succeeded
}

// stopsInstance says whether the run strategy ends this instance, as
// syncRunStrategy does: Halted always; Always and RerunOnFailure once it is
// final (Always then starts a new one, RerunOnFailure only after a
// failure); Once and Manual leave a final instance in place.
func stopsInstance(strategy kubevirtv1.VirtualMachineRunStrategy, vmi *kubevirtv1.VirtualMachineInstance) bool {
	switch strategy {
	case kubevirtv1.RunStrategyHalted:
		return true
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure:
		return isFinal(vmi)
	}
	return false
}

// startsInstance says whether a VM without an instance gets one: Always and
// Once do; RerunOnFailure on a start request (left by a failure) or the
// first time it runs under this strategy; Manual and Halted never here.
func startsInstance(vm *kubevirtv1.VirtualMachine) bool {
	switch strategy := runStrategyOf(vm); strategy {
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyOnce:
		return true
	case kubevirtv1.RunStrategyRerunOnFailure:
		return hasStartRequest(vm) || vm.Status.RunStrategy != strategy
	}
	return false
}

func hasStartRequest(vm *kubevirtv1.VirtualMachine) bool {
	return len(vm.Status.StateChangeRequests) > 0 && vm.Status.StateChangeRequests[0].Action == kubevirtv1.StartRequest
}

func (s *Simulator) syncRunStrategy(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, set switches) (vmSync, error) {
	var sync vmSync
	strategy := runStrategyOf(vm)
	if vmi != nil {
		if !vmi.DeletionTimestamp.IsZero() || !stopsInstance(strategy, vmi) {
			return sync, nil
		}
		if err := s.client.Delete(ctx, vmi); client.IgnoreNotFound(err) != nil {
			return sync, fmt.Errorf("delete VirtualMachineInstance %s/%s: %w", vmi.Namespace, vmi.Name, err)
		}
		sync.deleted, sync.ended = true, vmi
		if strategy == kubevirtv1.RunStrategyRerunOnFailure && vmi.Status.Phase == kubevirtv1.Failed && !hasStartRequest(vm) {
			// vm.go's addStartRequest: the next pass starts it again.
			vm.Status.StateChangeRequests = append(vm.Status.StateChangeRequests, kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StartRequest})
		}
		return sync, nil
	}
	if !startsInstance(vm) {
		return sync, nil
	}
	// The cache may not hold the start failure this controller just
	// recorded (KubeVirt's expectations guard the same race): decide a
	// start on the VM as stored.
	var stored kubevirtv1.VirtualMachine
	if err := s.reader.Get(ctx, client.ObjectKeyFromObject(vm), &stored); err != nil {
		return sync, fmt.Errorf("read VirtualMachine %s/%s: %w", vm.Namespace, vm.Name, err)
	}
	if stored.ResourceVersion != vm.ResourceVersion {
		sync.retryAfter = 100 * time.Millisecond // the next pass sees the stored VM
		return sync, nil
	}
	if left := startBackoffLeft(vm, time.Now()); left > 0 {
		sync.retryAfter = left
		return sync, nil
	}
	if set.on(SwitchVMICreate, VMICreateRefused) {
		sync.failure = fmt.Sprintf("failure while starting VMI: admission webhook %q denied the request: VirtualMachineInstance %s/%s refused (simulated)",
			"vmi-refuse.simulator.vmoperator.test", vm.Namespace, vm.Name)
		return sync, nil
	}
	if err := s.client.Create(ctx, instanceFor(vm), client.FieldOwner(FieldOwner)); apierrors.IsAlreadyExists(err) {
		return sync, nil // the cache has not seen it yet
	} else if err != nil {
		return sync, fmt.Errorf("create VirtualMachineInstance %s/%s: %w", vm.Namespace, vm.Name, err)
	}
	sync.created = true
	return sync, nil
}

func startBackoffLeft(vm *kubevirtv1.VirtualMachine, now time.Time) time.Duration {
	failure := vm.Status.StartFailure
	if failure == nil || failure.RetryAfterTimestamp == nil {
		return 0
	}
	if left := failure.RetryAfterTimestamp.Sub(now); left > 0 {
		return left
	}
	return 0
}

func instanceFor(vm *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{
			Name:            vm.Name,
			Namespace:       vm.Namespace,
			Labels:          vm.Spec.Template.ObjectMeta.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)},
		},
		Spec: *vm.Spec.Template.Spec.DeepCopy(),
	}
}

// dataVolumeError is KubeVirt's DataVolumeError for the VM's DataVolumes
// (pkg/storage/types/dv.go, HasDataVolumeErrors): one Failed, or one whose
// importer stopped with reason Error or ImagePullFailed; "" for none.
func (s *Simulator) dataVolumeError(ctx context.Context, vm *kubevirtv1.VirtualMachine) (string, error) {
	for _, volume := range vm.Spec.Template.Spec.Volumes {
		if volume.DataVolume == nil {
			continue
		}
		var dv cdiv1.DataVolume
		err := s.client.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: volume.DataVolume.Name}, &dv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read DataVolume %s/%s: %w", vm.Namespace, volume.DataVolume.Name, err)
		}
		if dv.Status.Phase == cdiv1.Failed {
			return fmt.Sprintf("DataVolume %s is in Failed phase", dv.Name), nil
		}
		for _, c := range dv.Status.Conditions {
			if c.Type == cdiv1.DataVolumeRunning && c.Status == corev1.ConditionFalse && (c.Reason == "Error" || c.Reason == "ImagePullFailed") {
				return fmt.Sprintf("DataVolume %s importer has stopped running due to an error: %s", dv.Name, c.Message), nil
			}
		}
	}
	return "", nil
}

func (s *Simulator) writeVMStatus(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, sync vmSync, dataVolumeError string) error {
	next := vm.Status.DeepCopy()
	next.Created = vmi != nil
	next.Ready = vmi != nil && hasCondition(vmi.Status.Conditions, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue)
	if next.RunStrategy != "" || next.Created {
		next.RunStrategy = runStrategyOf(vm)
	}
	if vmi != nil && hasStartRequest(vm) {
		next.StateChangeRequests = next.StateChangeRequests[1:] // done: the instance exists
	}
	if len(next.StateChangeRequests) == 0 {
		next.StateChangeRequests = nil
	}
	counted := vmi
	if sync.ended != nil {
		counted = sync.ended
	}
	next.StartFailure = startFailure(vm, counted, time.Now())
	next.Conditions = vmConditions(vm, vmi, sync)
	next.PrintableStatus = printableStatus(vm, vmi, next, sync, dataVolumeError)
	if apiequality.Semantic.DeepEqual(&vm.Status, next) {
		return nil
	}
	vm.Status = *next
	if err := s.client.Status().Update(ctx, vm, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("update the status of VirtualMachine %s/%s: %w", vm.Namespace, vm.Name, err)
	}
	return nil
}

func ran(vmi *kubevirtv1.VirtualMachineInstance) bool {
	if vmi == nil {
		return false
	}
	for _, t := range vmi.Status.PhaseTransitionTimestamps {
		if t.Phase == kubevirtv1.Running {
			return true
		}
	}
	return vmi.Status.Phase == kubevirtv1.Running
}

// startFailure is the VM's start-failure record as vm.go's
// syncStartFailureStatus keeps it: cleared once an instance ran or when the
// strategy restarts nothing; counted once per instance that ended before
// it ever ran, with the backoff before the next start.
func startFailure(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, now time.Time) *kubevirtv1.VirtualMachineStartFailure {
	switch runStrategyOf(vm) {
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyOnce:
	default:
		return nil
	}
	if ran(vmi) {
		return nil
	}
	previous := vm.Status.StartFailure
	if vmi == nil || !isFinal(vmi) || (previous != nil && previous.LastFailedVMIUID == vmi.UID) {
		return previous.DeepCopy()
	}
	count := 1
	if previous != nil {
		count = previous.ConsecutiveFailCount + 1
	}
	retry := metav1.NewTime(now.Add(startBackoff(count)))
	return &kubevirtv1.VirtualMachineStartFailure{LastFailedVMIUID: vmi.UID, RetryAfterTimestamp: &retry, ConsecutiveFailCount: count}
}

func hasCondition(conditions []kubevirtv1.VirtualMachineInstanceCondition, t kubevirtv1.VirtualMachineInstanceConditionType, status corev1.ConditionStatus) bool {
	return findCondition(conditions, t, status) != nil
}

func findCondition(conditions []kubevirtv1.VirtualMachineInstanceCondition, t kubevirtv1.VirtualMachineInstanceConditionType, status corev1.ConditionStatus) *kubevirtv1.VirtualMachineInstanceCondition {
	for i := range conditions {
		if conditions[i].Type == t && conditions[i].Status == status {
			return &conditions[i]
		}
	}
	return nil
}

// vmConditions are the VM's conditions as vm.go's syncConditions keeps
// them: Ready from the instance (or VMINotExists), Failure while a create
// is refused, the instance's other conditions copied (kept when it is
// gone), and RestartRequired (syncRestartRequired) while the running
// instance was made from a spec that differs in a field KubeVirt cannot
// change live; a start or stop clears it.
func vmConditions(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, sync vmSync) []kubevirtv1.VirtualMachineCondition {
	var next []kubevirtv1.VirtualMachineCondition
	ready := kubevirtv1.VirtualMachineCondition{Type: kubevirtv1.VirtualMachineReady, Status: corev1.ConditionFalse, Reason: "VMINotExists", Message: "VMI does not exist"}
	if vmi != nil {
		ready.Reason, ready.Message = "VMIConditionMissing", "VMI is missing the Ready condition"
		for _, c := range vmi.Status.Conditions {
			if c.Type == kubevirtv1.VirtualMachineInstanceReady {
				ready.Status, ready.Reason, ready.Message = c.Status, c.Reason, c.Message
			}
		}
	}
	next = append(next, keepTransition(vm, ready))
	if sync.failure != "" {
		next = append(next, keepTransition(vm, kubevirtv1.VirtualMachineCondition{
			Type: kubevirtv1.VirtualMachineFailure, Status: corev1.ConditionTrue, Reason: reasonFailedCreate, Message: sync.failure,
		}))
	}
	if vmi == nil {
		// Without an instance KubeVirt keeps the conditions it last copied.
		for _, c := range vm.Status.Conditions {
			if !ignoredInSync(c.Type) {
				next = append(next, c)
			}
		}
	} else {
		for _, c := range vmi.Status.Conditions {
			if !ignoredInSync(kubevirtv1.VirtualMachineConditionType(c.Type)) {
				next = append(next, keepTransition(vm, kubevirtv1.VirtualMachineCondition{
					Type: kubevirtv1.VirtualMachineConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message,
				}))
			}
		}
	}
	if !sync.created && !sync.deleted && vmi != nil {
		if why := restartRequired(vm, vmi); why != "" {
			next = append(next, keepTransition(vm, kubevirtv1.VirtualMachineCondition{
				Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue, Message: why,
			}))
		}
	}
	return next
}

func ignoredInSync(t kubevirtv1.VirtualMachineConditionType) bool {
	return t == kubevirtv1.VirtualMachineReady || t == kubevirtv1.VirtualMachineFailure || t == kubevirtv1.VirtualMachineRestartRequired
}

// keepTransition keeps the stored transition time of an unchanged
// condition, so an unchanged status compares equal and is not written.
func keepTransition(vm *kubevirtv1.VirtualMachine, c kubevirtv1.VirtualMachineCondition) kubevirtv1.VirtualMachineCondition {
	for _, old := range vm.Status.Conditions {
		if old.Type == c.Type && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
			return c
		}
	}
	c.LastTransitionTime = metav1.Now()
	return c
}

// printableStatus follows vm.go's setPrintableStatus: the first of these
// that holds, in upstream's order (Terminating, Migrating, Paused,
// Provisioning, WaitingForVolumeBinding and WaitingForReceiver are not
// simulated).
func printableStatus(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, status *kubevirtv1.VirtualMachineStatus, sync vmSync, dataVolumeError string) kubevirtv1.VirtualMachinePrintableStatus {
	var conditions []kubevirtv1.VirtualMachineInstanceCondition
	if vmi != nil {
		conditions = vmi.Status.Conditions
	}
	synchronized := findCondition(conditions, kubevirtv1.VirtualMachineInstanceSynchronized, corev1.ConditionFalse)
	syncReason := ""
	if synchronized != nil {
		syncReason = synchronized.Reason
	}
	unschedulable := findCondition(conditions, kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled), corev1.ConditionFalse)
	final := vmi != nil && isFinal(vmi)
	switch {
	case vmi != nil && !final && !vmi.DeletionTimestamp.IsZero():
		return kubevirtv1.VirtualMachineStatusStopping
	case vmi != nil && vmi.Status.Phase == kubevirtv1.Running:
		return kubevirtv1.VirtualMachineStatusRunning
	case syncReason == reasonFailedPvcNotFound:
		return kubevirtv1.VirtualMachineStatusPvcNotFound
	case dataVolumeError != "":
		return kubevirtv1.VirtualMachineStatusDataVolumeError
	case unschedulable != nil && unschedulable.Reason == corev1.PodReasonUnschedulable:
		return kubevirtv1.VirtualMachineStatusUnschedulable
	case syncReason == ImagePullErr:
		return kubevirtv1.VirtualMachineStatusErrImagePull
	case syncReason == ImagePullBackOff:
		return kubevirtv1.VirtualMachineStatusImagePullBackOff
	case vmi == nil && sync.created, vmi != nil && !final:
		return kubevirtv1.VirtualMachineStatusStarting
	case !sync.created && status.StartFailure != nil && status.StartFailure.ConsecutiveFailCount > 0 && restarts(runStrategyOf(vm)):
		return kubevirtv1.VirtualMachineStatusCrashLoopBackOff
	}
	return kubevirtv1.VirtualMachineStatusStopped
}

func restarts(strategy kubevirtv1.VirtualMachineRunStrategy) bool {
	return strategy == kubevirtv1.RunStrategyAlways || strategy == kubevirtv1.RunStrategyRerunOnFailure || strategy == kubevirtv1.RunStrategyOnce
}
