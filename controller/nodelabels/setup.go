package nodelabels

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// SetupWithManager watches Nodes (labels and annotations only: status
// heartbeats are not our business), NodeCapabilities, the agents' Leases
// (only renewals that end a lapse: routine renewals cost nothing),
// HostNetworks, and the set of labels profiles want (bridges, VLANs, OVS
// bridges, links), which the profile reconciler keeps in the index.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	sameName := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetName()}}}
	})
	wantedChanged := make(chan event.GenericEvent)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-r.Index.WantedChanged():
				select {
				case wantedChanged <- event.GenericEvent{Object: &corev1.Node{}}:
				case <-ctx.Done():
					return nil
				}
			}
		}
	})); err != nil {
		return fmt.Errorf("add the node label watch: %w", err)
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("nodelabels").
		For(&corev1.Node{}, builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&vmv1alpha1.NodeCapability{}, sameName).
		Watches(&coordinationv1.Lease{}, sameName, builder.WithPredicates(r.leaseRevived())).
		Watches(&vmv1alpha1.HostNetwork{}, handler.EnqueueRequestsFromMapFunc(r.allNodes)).
		WatchesRawSource(source.Channel(wantedChanged, handler.EnqueueRequestsFromMapFunc(r.allNodes))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up the nodelabels controller: %w", err)
	}
	return nil
}

// leaseRevived passes Lease events of the agents' namespace that can change
// a node's reporting label or when it lapses: a new Lease, a renewal after a
// lapse, a renewal that brings the expiry closer (a shorter duration), a
// deletion. Routine renewals, which only push the expiry out, pass nothing.
func (r *Reconciler) leaseRevived() predicate.Predicate {
	inNamespace := func(obj client.Object) bool { return obj.GetNamespace() == r.LeaseNamespace }
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return inNamespace(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return inNamespace(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(*coordinationv1.Lease)
			updated, okNew := e.ObjectNew.(*coordinationv1.Lease)
			if !okOld || !okNew || !inNamespace(updated) {
				return false
			}
			return !r.now().Before(agentlease.Expiry(old)) || agentlease.Expiry(updated).Before(agentlease.Expiry(old))
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// allNodes requeues every node. A map function cannot return an error: a
// failed List (from the cache, so only when the cache itself fails) is
// logged, and the nodes wait for their next own event.
func (r *Reconciler) allNodes(ctx context.Context, _ client.Object) []reconcile.Request {
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		log.FromContext(ctx).Error(err, "List Nodes to requeue them all: their labels wait for their next event")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(nodes.Items))
	for i := range nodes.Items {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: nodes.Items[i].Name}})
	}
	return requests
}
