package simulator

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func (s *Simulator) setupVMs(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-virt-controller").
		For(&kubevirtv1.VirtualMachine{}).
		Owns(&kubevirtv1.VirtualMachineInstance{}).
		Complete(ctrlFunc(s.reconcileVM))
	if err != nil {
		return fmt.Errorf("set up controller sim-virt-controller: %w", err)
	}
	return nil
}

// shouldRun is KubeVirt's reading of a run strategy for a VM without an instance.
func shouldRun(vm *kubevirtv1.VirtualMachine) bool {
	if vm.Spec.RunStrategy == nil {
		return false
	}
	switch *vm.Spec.RunStrategy {
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyOnce:
		return true
	}
	return false
}

// reconcileVM plays virt-controller: an instance exists exactly when the run
// strategy says so, and the VM's status mirrors it.
func (s *Simulator) reconcileVM(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vm kubevirtv1.VirtualMachine
	if err := s.client.Get(ctx, req.NamespacedName, &vm); err != nil || !vm.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var vmi kubevirtv1.VirtualMachineInstance
	err := s.client.Get(ctx, req.NamespacedName, &vmi)
	found := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("get VirtualMachineInstance %s: %w", req.NamespacedName, err)
	}
	switch {
	case !found && shouldRun(&vm):
		if err := s.client.Create(ctx, instanceFor(&vm), client.FieldOwner(FieldOwner)); err != nil {
			return ctrl.Result{}, fmt.Errorf("create VirtualMachineInstance %s: %w", req.NamespacedName, err)
		}
		return ctrl.Result{}, nil
	case found && !shouldRun(&vm) && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyHalted:
		return ctrl.Result{}, client.IgnoreNotFound(s.client.Delete(ctx, &vmi))
	}
	var instance *kubevirtv1.VirtualMachineInstance
	if found {
		instance = &vmi
	}
	return ctrl.Result{}, s.writeVMStatus(ctx, &vm, instance)
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

func (s *Simulator) writeVMStatus(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) error {
	next := vm.Status.DeepCopy()
	next.Created = vmi != nil
	next.Ready = vmi != nil && vmi.Status.Phase == kubevirtv1.Running
	switch {
	case vmi == nil:
		next.PrintableStatus = kubevirtv1.VirtualMachineStatusStopped
	case vmi.Status.Phase == kubevirtv1.Running:
		next.PrintableStatus = kubevirtv1.VirtualMachineStatusRunning
	default:
		next.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
	}
	next.Conditions = nil
	if vmi != nil && vmi.Status.Phase == kubevirtv1.Running && !apiequality.Semantic.DeepEqual(vm.Spec.Template.Spec.Domain.CPU, vmi.Spec.Domain.CPU) {
		// KubeVirt cannot change a running guest's CPUs (without hotplug): it asks for a restart.
		next.Conditions = []kubevirtv1.VirtualMachineCondition{{
			Type: kubevirtv1.VirtualMachineRestartRequired, Status: corev1.ConditionTrue,
			Message: "a restart is required to apply the CPU change (simulated)",
		}}
	}
	if apiequality.Semantic.DeepEqual(&vm.Status, next) {
		return nil
	}
	vm.Status = *next
	if err := s.client.Status().Update(ctx, vm, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("update the status of VirtualMachine %s/%s: %w", vm.Namespace, vm.Name, err)
	}
	return nil
}
