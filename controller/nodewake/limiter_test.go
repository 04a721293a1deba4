package nodewake

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func at(seconds float64) time.Time { return t0.Add(time.Duration(seconds * float64(time.Second))) }

// TestDelayLeadingAndTrailingEdge: the first change wakes at once, changes
// within the interval wait for its end (all for the same moment), a change
// right after a trailing wake waits a full interval, and a change after a
// quiet interval wakes at once again. Nodes do not share windows.
func TestDelayLeadingAndTrailingEdge(t *testing.T) {
	l := New(time.Second)
	steps := []struct {
		node string
		at   float64
		want float64 // delay in seconds
	}{
		{"node-a", 0, 0},       // leading edge
		{"node-a", 0.1, 0.9},   // trailing edge at 1.0
		{"node-a", 0.5, 0.5},   // the same wake at 1.0
		{"node-b", 0.5, 0},     // another node: its own window
		{"node-a", 0.99, 0.01}, // still the wake at 1.0
		{"node-a", 1.0, 1.0},   // the wake at 1.0 is being delivered: next at 2.0
		{"node-a", 1.5, 0.5},   // the same wake at 2.0
		{"node-a", 2.5, 0.5},   // after the wake at 2.0: next at 3.0
		{"node-a", 4.5, 0},     // quiet since 3.0: at once
	}
	for _, step := range steps {
		got := l.Delay(step.node, at(step.at))
		if want := time.Duration(step.want * float64(time.Second)); got != want {
			t.Fatalf("%s at %.2fs: delay %v, want %v", step.node, step.at, got, want)
		}
	}
}

// TestFlipsEvery100msForFiveSeconds: fifty changes of one node wake at
// most duration/interval+2 times, the wakes are an interval apart, and the
// last change is delivered within an interval of happening.
func TestFlipsEvery100msForFiveSeconds(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, 2 * time.Second, 300 * time.Millisecond} {
		l := New(interval)
		wakes := map[time.Time]bool{}
		var last time.Time
		var lastDelivered time.Time
		for i := range 50 {
			now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
			delivered := now.Add(l.Delay("node-a", now))
			wakes[delivered] = true
			last, lastDelivered = now, delivered
		}
		bound := int(5*time.Second/interval) + 2
		t.Logf("interval %v: 50 changes in 5 s, %d wakes (bound %d)", interval, len(wakes), bound)
		if len(wakes) > bound || len(wakes) < 2 {
			t.Errorf("interval %v: %d wakes, want 2 to %d", interval, len(wakes), bound)
		}
		var times []time.Time
		for w := range wakes {
			times = append(times, w)
		}
		for _, a := range times {
			for _, b := range times {
				if a.Before(b) && b.Sub(a) < interval {
					t.Errorf("interval %v: wakes at %v and %v are closer than the interval", interval, a.Sub(t0), b.Sub(t0))
				}
			}
		}
		if lastDelivered.Before(last) || lastDelivered.Sub(last) > interval {
			t.Errorf("interval %v: the last change (at %v) is delivered at %v", interval, last.Sub(t0), lastDelivered.Sub(t0))
		}
	}
}

func TestZeroIntervalNeverDelays(t *testing.T) {
	l := New(0)
	for i := range 10 {
		if d := l.Delay("node-a", at(float64(i)*0.01)); d != 0 {
			t.Fatalf("delay %v with no interval", d)
		}
	}
}

// TestQuietNodesAreForgotten: the limiter remembers only nodes that changed
// within the last interval or so, whatever names come and go.
func TestQuietNodesAreForgotten(t *testing.T) {
	l := New(time.Second)
	for i := range 100 {
		l.Delay(fmt.Sprintf("node-%d", i), at(0))
	}
	if n := l.tracked(); n != 100 {
		t.Fatalf("%d nodes tracked, want 100", n)
	}
	l.Delay("node-x", at(2.5))
	if n := l.tracked(); n != 1 {
		t.Fatalf("%d nodes tracked after a quiet interval, want 1 (the one that just changed)", n)
	}
}

// TestEnqueueDeliversTheLastChange runs the limiter against a real work
// queue on a fake clock: ten changes within the interval put each profile
// in the queue once at once and once more at the interval's end, a change
// that wakes no profile reserves nothing, and after a quiet interval a
// change wakes at once again.
func TestEnqueueDeliversTheLastChange(t *testing.T) {
	clock := testingclock.NewFakeClock(t0)
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clock})
	defer queue.ShutDown()
	profiles := []reconcile.Request{
		{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}},
		{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}},
	}
	l := New(time.Second)
	l.Enqueue(queue, "node-a", clock.Now(), nil) // wakes nothing: no slot used
	for range 10 {
		l.Enqueue(queue, "node-a", clock.Now(), profiles)
		clock.Step(90 * time.Millisecond)
	}
	if got := drain(queue); got != 2 {
		t.Fatalf("%d requests delivered at once, want 2 (the leading edge)", got)
	}
	clock.Step(time.Second - 900*time.Millisecond)
	waitForLen(t, queue, 2)
	if got := drain(queue); got != 2 {
		t.Fatalf("%d requests delivered at the interval's end, want 2 (the trailing edge)", got)
	}
	clock.Step(5 * time.Second)
	l.Enqueue(queue, "node-a", clock.Now(), profiles)
	if got := drain(queue); got != 2 {
		t.Fatalf("%d requests delivered at once after a quiet interval, want 2", got)
	}
}

func drain(queue workqueue.TypedRateLimitingInterface[reconcile.Request]) int {
	n := 0
	for queue.Len() > 0 {
		item, _ := queue.Get()
		queue.Done(item)
		n++
	}
	return n
}

// waitForLen waits for the delaying queue's goroutine to move the items
// that became ready on the fake clock; it does not depend on real time
// beyond that goroutine running.
func waitForLen(t *testing.T, queue workqueue.TypedRateLimitingInterface[reconcile.Request], want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queue.Len() < want {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d requests, want %d", queue.Len(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHandlerLimitsPerObjectName: events on a NodeCapability and on the
// Node of the same name share the node's limit: the first wakes at once,
// the second waits for the interval's end; another node is not held back.
func TestHandlerLimitsPerObjectName(t *testing.T) {
	clock := testingclock.NewFakeClock(time.Now())
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clock})
	defer queue.ShutDown()
	everyNetwork := func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "lan"}}, {NamespacedName: types.NamespacedName{Name: "mgmt"}}}
	}
	h := Handler(New(time.Minute), everyNetwork)
	ctx := context.Background()
	capability := &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	h.Update(ctx, event.UpdateEvent{ObjectOld: capability, ObjectNew: capability}, queue)
	if got := drain(queue); got != 2 {
		t.Fatalf("first change: %d requests at once, want 2", got)
	}
	h.Update(ctx, event.UpdateEvent{ObjectOld: node, ObjectNew: node}, queue)
	if got := queue.Len(); got != 0 {
		t.Fatalf("the Node's change within the interval: %d requests at once, want 0", got)
	}
	h.Create(ctx, event.CreateEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}}, queue)
	if got := drain(queue); got != 2 {
		t.Fatalf("another node: %d requests at once, want 2", got)
	}
	clock.Step(time.Minute)
	waitForLen(t, queue, 2)
}
