package profile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/util/workqueue"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/owner"
	"github.com/jianfenliu/vmoperator/controller/recovery"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// indexInstanceNode indexes VM instances by the node they run on, so that
// a node's loss wakes only the profiles whose instances it held.
const indexInstanceNode = "vmop.instanceNode"

// recoverFromNodeLoss acts when the observed instance's node is lost:
// it deletes the instance, so that KubeVirt starts the VM on another node,
// when the VM's disks allow it; otherwise the Ready condition says what
// the VM waits for. The check does not hold the VM: its spec stays applied.
func (r *Reconciler) recoverFromNodeLoss(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	vmi := observed.VMI
	if observed.VM == nil || vmi == nil || vmi.Status.NodeName == "" || !vmi.DeletionTimestamp.IsZero() {
		return nil
	}
	node, err := r.nodeOf(ctx, vmi.Status.NodeName)
	if err != nil || !recovery.Lost(node) {
		return err
	}
	singleNode, err := r.singleNodeClaims(ctx, vmi)
	if err != nil {
		return err
	}
	decision := recovery.Decide(vmi.Status.NodeName, node, singleNode, recovery.Restarts(observed.VM.Spec.RunStrategy))
	check := status.Check{Failed: true, Quiet: true, Reason: vmv1alpha1.ReasonNodeLost, Message: decision.Message}
	if decision.Action == recovery.Restart {
		uid := vmi.UID
		err := r.Client.Delete(ctx, vmi, client.Preconditions{UID: &uid})
		if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete VirtualMachineInstance %s/%s on lost node %s: %w", vmi.Namespace, vmi.Name, vmi.Status.NodeName, err)
		}
		log.FromContext(ctx).Info("restarting the VM elsewhere", "node", vmi.Status.NodeName)
		r.event(profile, vmi, corev1.EventTypeNormal, vmv1alpha1.EventRestartedElsewhere, "%s", decision.Message)
		observed.VMI = nil // gone: the status says the VM restarts
	} else if previous := meta.FindStatusCondition(profile.Status.Conditions, vmv1alpha1.ConditionReady); previous == nil || previous.Message != check.Message {
		// Once per node loss, not once per reconcile.
		r.event(profile, vmi, corev1.EventTypeWarning, vmv1alpha1.ReasonNodeLost, "%s", decision.Message)
	}
	// First among the waits: a VM pinned to the lost node also waits for
	// an eligible node, but the loss is what the user needs to read.
	observed.Blockers = append([]status.Check{check}, observed.Blockers...)
	return nil
}

// nodeOf reads a node from the cache; nil when it was deleted.
func (r *Reconciler) nodeOf(ctx context.Context, name string) (*corev1.Node, error) {
	var node corev1.Node
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, &node)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Node %s: %w", name, err)
	}
	return &node, nil
}

// singleNodeClaims are the instance's claims that only one node may attach.
// A claim that is gone cannot be attached anywhere: it does not count.
func (r *Reconciler) singleNodeClaims(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) ([]string, error) {
	var claims []corev1.PersistentVolumeClaim
	for _, name := range recovery.ClaimNames(vmi) {
		var claim corev1.PersistentVolumeClaim
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: name}, &claim)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get PersistentVolumeClaim %s/%s: %w", vmi.Namespace, name, err)
		}
		claims = append(claims, claim)
	}
	return recovery.SingleNodeClaims(claims), nil
}

// instanceNode is the index value of an instance: its node, if any.
func instanceNode(obj client.Object) []string {
	vmi, ok := obj.(*kubevirtv1.VirtualMachineInstance)
	if !ok || vmi.Status.NodeName == "" {
		return nil
	}
	return []string{vmi.Status.NodeName}
}

// nodeLossWakes wakes the profiles whose instances run on a node when it
// becomes lost or fenced, comes back, or is deleted. (Losing the reporting
// label already wakes every profile through the requirement index.)
func (r *Reconciler) nodeLossWakes() handler.EventHandler {
	enqueue := func(ctx context.Context, node string) []reconcile.Request {
		var instances kubevirtv1.VirtualMachineInstanceList
		if err := r.Client.List(ctx, &instances, client.MatchingFields{indexInstanceNode: node}); err != nil {
			log.FromContext(ctx).Error(err, "listing the instances of a node", "node", node)
			return nil
		}
		var requests []reconcile.Request
		for i := range instances.Items {
			requests = append(requests, owner.ProfileOfInstance(ctx, &instances.Items[i])...)
		}
		return requests
	}
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, okOld := e.ObjectOld.(*corev1.Node)
			updated, okNew := e.ObjectNew.(*corev1.Node)
			if !okOld || !okNew || (recovery.Lost(old) == recovery.Lost(updated) && recovery.Fenced(old) == recovery.Fenced(updated)) {
				return
			}
			for _, request := range enqueue(ctx, updated.Name) {
				q.Add(request)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, request := range enqueue(ctx, e.Object.GetName()) {
				q.Add(request)
			}
		},
	}
}
