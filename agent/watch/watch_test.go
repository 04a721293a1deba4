package watch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rounds records the rounds a watcher runs.
type rounds struct {
	mu    sync.Mutex
	kinds []Round
	times []time.Time
}

// run records a round; every round claims to have written, the worst case
// for the flap limiter.
func (r *rounds) run(_ context.Context, k Round) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, k)
	r.times = append(r.times, time.Now())
	return true
}

func (r *rounds) count(k Round) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, got := range r.kinds {
		if got == k {
			n++
		}
	}
	return n
}

func newRestarts() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "restarts"}, []string{"subscription"})
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, w *Watcher) *rounds {
	t.Helper()
	r := &rounds{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, r.run) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first full round", time.Second, func() bool { return r.count(RoundFull) >= 1 })
	return r
}

// fakeSource is a subscription the test drives: it fails to start failStarts
// times, then each started subscription ends when the test closes it.
type fakeSource struct {
	mu         sync.Mutex
	failStarts int
	starts     int
	notify     func()
	end        chan struct{}
}

func (f *fakeSource) subscription() Subscription {
	return Subscription{Name: "link", Start: func(done <-chan struct{}, notify func(), _ func(error)) (<-chan struct{}, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.starts++
		if f.failStarts > 0 {
			f.failStarts--
			return nil, errors.New("netlink socket: too many open files")
		}
		f.notify = notify
		f.end = make(chan struct{})
		ended := make(chan struct{})
		end := f.end
		go func() {
			defer close(ended)
			select {
			case <-done:
			case <-end:
			}
		}()
		return ended, nil
	}}
}

func (f *fakeSource) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notify()
}

func (f *fakeSource) closeSubscription() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.end)
}

func (f *fakeSource) startCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts
}

func TestBurstIsOneRound(t *testing.T) {
	src := &fakeSource{}
	cfg := Config{Debounce: 100 * time.Millisecond, MinInterval: 500 * time.Millisecond, Resync: time.Hour}
	r := start(t, New(cfg, newRestarts(), func(error) {}, src.subscription()))
	waitFor(t, "subscription", time.Second, func() bool { return src.startCount() == 1 })

	for range 50 {
		src.fire()
	}
	waitFor(t, "the event round", time.Second, func() bool { return r.count(RoundEvents) == 1 })
	time.Sleep(200 * time.Millisecond)
	if got := r.count(RoundEvents); got != 1 {
		t.Fatalf("50 events in a burst gave %d rounds, want 1", got)
	}

	// A second burst right away waits out MinInterval since the first round.
	src.fire()
	waitFor(t, "the second event round", 2*time.Second, func() bool { return r.count(RoundEvents) == 2 })
	r.mu.Lock()
	gap := r.times[len(r.times)-1].Sub(r.times[len(r.times)-2])
	r.mu.Unlock()
	if gap < cfg.MinInterval {
		t.Errorf("two event rounds %v apart, want at least %v", gap, cfg.MinInterval)
	}
}

func TestResubscribeWithBackoffAndCount(t *testing.T) {
	src := &fakeSource{failStarts: 2}
	restarts := newRestarts()
	var errs atomic.Int32
	cfg := Config{Debounce: 10 * time.Millisecond, MinInterval: 10 * time.Millisecond, Resync: time.Hour}
	r := start(t, New(cfg, restarts, func(error) { errs.Add(1) }, src.subscription()))

	// Two failed starts, then a good one: two restarts counted, errors reported.
	waitFor(t, "third start", 3*time.Second, func() bool { return src.startCount() == 3 })
	if got := testutil.ToFloat64(restarts.WithLabelValues("link")); got != 2 {
		t.Errorf("restarts after two failed starts = %v, want 2", got)
	}
	if errs.Load() != 2 {
		t.Errorf("errors reported = %d, want 2", errs.Load())
	}
	// The subscription closing under us is a restart too, followed by a full round.
	fullBefore := r.count(RoundFull)
	src.closeSubscription()
	waitFor(t, "re-subscription", 3*time.Second, func() bool { return src.startCount() == 4 })
	waitFor(t, "a full round after the restart", time.Second, func() bool { return r.count(RoundFull) > fullBefore })
	if got := testutil.ToFloat64(restarts.WithLabelValues("link")); got != 3 {
		t.Errorf("restarts = %v, want 3", got)
	}
}

func TestResyncRunsFullRounds(t *testing.T) {
	cfg := Config{Resync: 100 * time.Millisecond}
	r := start(t, New(cfg, newRestarts(), func(error) {}))
	waitFor(t, "three full rounds", 2*time.Second, func() bool { return r.count(RoundFull) >= 3 })
	if r.count(RoundEvents) != 0 {
		t.Errorf("event rounds without events: %d", r.count(RoundEvents))
	}
}
