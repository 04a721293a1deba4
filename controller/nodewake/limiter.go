// Package nodewake spaces the re-queues that one node's changes cause, so
// that an agent changing its NodeCapability many times a second (broken,
// flapping or hostile) cannot keep every profile on the cluster
// reconciling. It debounces on the trailing edge: the first change after a
// quiet interval wakes at once, later ones within the interval wake once
// at its end, so the last change is always delivered and nothing is lost.
// Profiles maps a node's changes to the profiles they concern.
package nodewake

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Limiter decides, per node, when the wakes its changes cause are
// delivered: at most one delivery time per node per Interval. It is safe
// for concurrent use. A zero interval, or a nil Limiter, delivers every
// wake at once.
type Limiter struct {
	interval time.Duration
	mu       sync.Mutex
	// last is, per node, the time of its latest wake, delivered or due.
	last map[string]time.Time
	// swept is when last was last cleared of nodes quiet for an interval.
	swept time.Time
}

// New returns a limiter allowing one wake per node per interval.
func New(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, last: map[string]time.Time{}}
}

// Delay says how long after now a wake the node's change caused at now is
// to be delivered, and reserves that time:
//   - zero when the node's latest wake is at least an interval old (or
//     there was none): the leading edge, delivered at once;
//   - until the wake already due, when one is due later than now;
//   - otherwise until an interval after its latest wake, which becomes
//     the wake due (the trailing edge).
//
// So a node's wakes are at least an interval apart, and each change is
// delivered at most an interval after it happened.
func (l *Limiter) Delay(node string, now time.Time) time.Duration {
	if l == nil || l.interval <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	last, seen := l.last[node]
	switch {
	case !seen || !now.Before(last.Add(l.interval)):
		l.last[node] = now
		return 0
	case now.Before(last):
		return last.Sub(now)
	default:
		due := last.Add(l.interval)
		l.last[node] = due
		return due.Sub(now)
	}
}

// sweep forgets the nodes whose latest wake is an interval old (they would
// wake at once anyway), at most once an interval, so that the map holds
// only the nodes that changed recently, whatever names come and go.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < l.interval {
		return
	}
	l.swept = now
	for node, last := range l.last {
		if !now.Before(last.Add(l.interval)) {
			delete(l.last, node)
		}
	}
}

// tracked is how many nodes the limiter remembers (for tests).
func (l *Limiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.last)
}

// Enqueue adds the requests a change of node caused at now, at once or
// after the node's delay. The queue drops a request already waiting (and
// keeps its earlier time), so the requests of every change within an
// interval are delivered together, each once.
func (l *Limiter) Enqueue(queue workqueue.TypedRateLimitingInterface[reconcile.Request], node string, now time.Time, requests []reconcile.Request) {
	if len(requests) == 0 {
		return // a change that wakes nothing uses no wake
	}
	delay := l.Delay(node, now)
	for _, request := range requests {
		if delay == 0 {
			queue.Add(request)
		} else {
			queue.AddAfter(request, delay)
		}
	}
}

// Handler is handler.EnqueueRequestsFromMapFunc with the wakes limited per
// node: the node is the object's name, which a NodeCapability shares with
// its Node, so both kinds of event can share one Limiter.
func Handler(l *Limiter, mapFunc handler.MapFunc) handler.EventHandler {
	enqueue := func(ctx context.Context, obj client.Object, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		l.Enqueue(queue, obj.GetName(), time.Now(), mapFunc(ctx, obj))
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
	}
}
