package nodewake

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// Profiles maps a node's changes (its NodeCapability, its labels, its
// cordon) to the profiles they concern, through the requirement index.
type Profiles struct {
	Client client.Reader
	// Index says which profiles need which requirement label.
	Index *placement.Index
	// Limiter spaces the wakes one node causes.
	Limiter *Limiter
}

// Capabilities wakes only the profiles that need something
// whose availability changed on the node, through the requirement index,
// not a pass over all profiles; at most once per node per
// CapabilityWakeInterval, the last change always delivered (Limiter).
func (w Profiles) Capabilities() handler.EventHandler {
	enqueue := func(ctx context.Context, node string, old, updated *vmv1alpha1.NodeCapabilityStatus, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		offers, err := placement.HostNetworkOffers(ctx, w.Client)
		if err != nil {
			log.FromContext(ctx).Error(err, "mapping a capability change to profiles", "node", node)
			return
		}
		var requests []reconcile.Request
		for label := range placement.ChangedRequirements(old, updated, w.Index.Wanted(), offers) {
			for _, key := range w.Index.Profiles(label) {
				requests = append(requests, reconcile.Request{NamespacedName: key})
			}
		}
		w.Limiter.Enqueue(queue, node, time.Now(), requests) // the queue's clock, not the reconciler's
	}
	status := func(obj client.Object) *vmv1alpha1.NodeCapabilityStatus {
		if capability, ok := obj.(*vmv1alpha1.NodeCapability); ok {
			return &capability.Status
		}
		return nil
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object.GetName(), nil, status(e.Object), q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object.GetName(), status(e.Object), nil, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew.GetName(), status(e.ObjectOld), status(e.ObjectNew), q)
		},
	}
}

// Nodes wakes, on a Node label change, the profiles that
// need or select by a label that changed, and on a cordon change every
// profile (any may have been placeable only there). Label changes share
// the node's wake limit with its capability changes: the node labeller
// turns each capability change into one.
func (w Profiles) Nodes() handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, okOld := e.ObjectOld.(*corev1.Node)
			updated, okNew := e.ObjectNew.(*corev1.Node)
			if !okOld || !okNew {
				return
			}
			if old.Spec.Unschedulable != updated.Spec.Unschedulable {
				for _, request := range w.all(ctx, updated) {
					q.Add(request)
				}
				return
			}
			var requests []reconcile.Request
			for _, key := range placement.ChangedLabelKeys(old.Labels, updated.Labels) {
				for _, profile := range w.Index.Profiles(key) {
					requests = append(requests, reconcile.Request{NamespacedName: profile})
				}
			}
			w.Limiter.Enqueue(q, updated.Name, time.Now(), requests)
		},
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, request := range w.all(ctx, e.Object) {
				q.Add(request)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, request := range w.all(ctx, e.Object) {
				q.Add(request)
			}
		},
	}
}

func (w Profiles) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := w.Client.List(ctx, &profiles); err != nil {
		log.FromContext(ctx).Error(err, "listing profiles to re-queue")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(profiles.Items))
	for i := range profiles.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&profiles.Items[i])})
	}
	return requests
}
