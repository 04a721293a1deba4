package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
)

// flakyPublisher fails its first failures calls, as an apiserver restart would.
type flakyPublisher struct {
	mu       sync.Mutex
	failures int
	calls    int
	okAt     time.Time
}

func (f *flakyPublisher) Publish(context.Context, vmv1alpha1.NodeCapabilityStatus) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return false, errors.New("connection refused")
	}
	if f.okAt.IsZero() {
		f.okAt = time.Now()
	}
	return true, nil
}

type staticProbes struct{}

func (staticProbes) ProbeKVM() vmv1alpha1.KVMStatus      { return vmv1alpha1.KVMStatus{} }
func (staticProbes) ProbeLinks() (probe.Snapshot, error) { return probe.Snapshot{}, nil }
func (staticProbes) ProbeBridgeVLANs(probe.Snapshot) (probe.BridgeVLANs, error) {
	return probe.BridgeVLANs{}, nil
}
func (staticProbes) ProbeSRIOV() (probe.SRIOVResult, error) { return probe.SRIOVResult{}, nil }

// TestFailedPublishIsRetried: with no kernel events and an hour to the next
// resync, two failed publishes are still followed by a successful one within
// the backoff (1 s, then 2 s).
func TestFailedPublishIsRetried(t *testing.T) {
	pub := &flakyPublisher{failures: 2}
	m := agentmetrics.NewNode("test")
	a := New(staticProbes{}, staticProbes{}, staticProbes{}, pub, m, logr.Discard())
	w := watch.New(watch.Config{Debounce: 10 * time.Millisecond, MinInterval: 10 * time.Millisecond, Resync: time.Hour}, m.SubscriptionRestarts, func(error) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); a.Run(ctx, w) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 6*time.Second, "a successful publish after two failures", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return !pub.okAt.IsZero()
	})
	pub.mu.Lock()
	defer pub.mu.Unlock()
	took := pub.okAt.Sub(start)
	t.Logf("published after %d calls, %v", pub.calls, took)
	if pub.calls != 3 || took < 3*time.Second-100*time.Millisecond {
		t.Errorf("calls=%d after %v, want 3 calls after the 1s+2s backoff", pub.calls, took)
	}
	if a.LastPublished().IsZero() {
		t.Error("LastPublished not set after success")
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
