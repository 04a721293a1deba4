//go:build integration

package watch

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestKernelEvents subscribes to a real namespace's link events: one port
// going down yields a round soon; a link flapping 40 times in about 2 s
// yields at most one round per MinInterval.
func TestKernelEvents(t *testing.T) {
	ns := netnstest.New(t)
	ns.Bridge(t, "br0")
	ns.VethPair(t, "p0", "q0", "br0")
	cfg := Config{Debounce: 100 * time.Millisecond, MinInterval: 500 * time.Millisecond, Resync: time.Hour}
	var errs atomic.Int32
	r := start(t, New(cfg, newRestarts(), func(error) { errs.Add(1) }, LinkSubscription(ns.NS), AddrSubscription(ns.NS)))
	time.Sleep(100 * time.Millisecond) // let the subscriptions open

	changed := time.Now()
	ns.SetDown(t, "p0")
	waitFor(t, "a round after p0 went down", 2*time.Second, func() bool { return r.count(RoundEvents) == 1 })
	r.mu.Lock()
	t.Logf("link down → round in %v", r.times[len(r.times)-1].Sub(changed))
	r.mu.Unlock()

	time.Sleep(cfg.MinInterval)
	before := r.count(RoundEvents)
	flapStart := time.Now()
	for i := range 40 {
		if i%2 == 0 {
			ns.SetUp(t, "p0")
		} else {
			ns.SetDown(t, "p0")
		}
		time.Sleep(50 * time.Millisecond)
	}
	flapping := time.Since(flapStart)
	time.Sleep(cfg.MinInterval + cfg.Debounce)
	got := r.count(RoundEvents) - before
	limit := int(flapping/cfg.MinInterval) + 2
	t.Logf("40 flaps over %v → %d rounds (limit %d)", flapping, got, limit)
	if got < 1 || got > limit {
		t.Errorf("flapping gave %d rounds, want 1..%d", got, limit)
	}
	if errs.Load() != 0 {
		t.Errorf("%d subscription errors", errs.Load())
	}
}
