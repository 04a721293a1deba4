package hostnetwork

import (
	"context"
	"fmt"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/nodewake"
)

// SetupWithManager watches HostNetworks, their policies and enactments,
// the agents' capabilities and the nodes (which decide where a network is
// verified), and, for networks being deleted or with an edit held, the
// profiles and VMIs that hold them. Policies are mapped by label, not by
// owner: revert policies are owned by nothing.
// HostNetworks are few: an event on a node or capability wakes all of them,
// at most once per node per CapabilityWakeInterval (nodewake).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := nodewake.Handler(nodewake.New(r.CapabilityWakeInterval), r.allHostNetworks)
	b := ctrl.NewControllerManagedBy(mgr).
		Named("hostnetwork").
		For(&vmv1alpha1.HostNetwork{}).
		Watches(&vmv1alpha1.NodeCapability{}, all).
		Watches(&corev1.Node{}, all, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&vmv1alpha1.VirtualMachineProfile{}, handler.EnqueueRequestsFromMapFunc(r.waitingHostNetworks))
	if r.KubeVirt {
		b = b.Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(r.waitingHostNetworks))
	}
	if r.NMState {
		b = b.Watches(&nmstatev1.NodeNetworkConfigurationPolicy{}, handler.EnqueueRequestsFromMapFunc(hostNetworkOfPolicy)).
			Watches(&nmstatev1beta1.NodeNetworkConfigurationEnactment{}, handler.EnqueueRequestsFromMapFunc(r.hostNetworkOfEnactment))
	}
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("set up the HostNetwork controller: %w", err)
	}
	return nil
}

func (r *Reconciler) allHostNetworks(ctx context.Context, _ client.Object) []reconcile.Request {
	var list vmv1alpha1.HostNetworkList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing HostNetworks to re-queue")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return requests
}

// waitingHostNetworks wakes the HostNetworks whose deletion or edit waits
// for their users: any profile or VMI change may be the last user leaving.
func (r *Reconciler) waitingHostNetworks(ctx context.Context, _ client.Object) []reconcile.Request {
	var list vmv1alpha1.HostNetworkList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing HostNetworks to re-queue")
		return nil
	}
	var requests []reconcile.Request
	for i := range list.Items {
		h := &list.Items[i]
		if !h.DeletionTimestamp.IsZero() || meta.FindStatusCondition(h.Status.Conditions, vmv1alpha1.ConditionEditHeld) != nil {
			requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return requests
}

// hostNetworkOfPolicy maps a policy the operator made to its HostNetwork.
func hostNetworkOfPolicy(_ context.Context, obj client.Object) []reconcile.Request {
	if name := desired.HostNetworkOf(obj); name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	return nil
}

// hostNetworkOfEnactment maps an enactment to the HostNetwork of its policy.
func (r *Reconciler) hostNetworkOfEnactment(ctx context.Context, obj client.Object) []reconcile.Request {
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	key := client.ObjectKey{Name: obj.GetLabels()[nmstateshared.EnactmentPolicyLabel]}
	if key.Name == "" || r.Client.Get(ctx, key, &policy) != nil {
		return nil
	}
	if name := desired.HostNetworkOf(&policy); name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	return nil
}
