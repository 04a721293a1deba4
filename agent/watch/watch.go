package watch

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Round says why a probe round runs.
type Round int

const (
	// RoundEvents follows kernel events: links and policies are re-probed.
	RoundEvents Round = iota
	// RoundFull is the first round, the periodic resync, and the round after a
	// subscription restart (events may have been lost): everything is re-probed.
	RoundFull
)

// Config sets the timing. Zero values take the defaults.
type Config struct {
	// Debounce is how long after the first event of a burst the round runs (500 ms).
	Debounce time.Duration
	// MinInterval is the least time between an event round that wrote and
	// the next event round (2 s), which bounds the writes a flapping link can
	// cause without delaying changes that follow rounds with nothing to write.
	MinInterval time.Duration
	// Resync is the base period of full rounds (5 min), stretched by up to 20 %
	// at random so that agents across a cluster do not resync together.
	Resync time.Duration
	// MaxBackoff caps the wait before re-subscribing (30 s).
	MaxBackoff time.Duration
}

func (c Config) withDefaults() Config {
	if c.Debounce == 0 {
		c.Debounce = 500 * time.Millisecond
	}
	if c.MinInterval == 0 {
		c.MinInterval = 2 * time.Second
	}
	if c.Resync == 0 {
		c.Resync = 5 * time.Minute
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	return c
}

// Watcher runs probe rounds when the kernel says something changed.
type Watcher struct {
	cfg      Config
	subs     []Subscription
	restarts *prometheus.CounterVec
	onError  func(error)

	kick chan struct{} // an event arrived; capacity 1 coalesces bursts
	lost chan struct{} // a subscription restarted; capacity 1
}

// New builds a watcher over subs. restarts is labelled by subscription name;
// onError receives every subscription error (it must not block).
func New(cfg Config, restarts *prometheus.CounterVec, onError func(error), subs ...Subscription) *Watcher {
	return &Watcher{
		cfg:      cfg.withDefaults(),
		subs:     subs,
		restarts: restarts,
		onError:  onError,
		kick:     make(chan struct{}, 1),
		lost:     make(chan struct{}, 1),
	}
}

// Kick asks for an event round, as a kernel event would; the policy
// verifier calls it when policies or enactments change. It never blocks.
func (w *Watcher) Kick() {
	signal(w.kick)
}

// RoundFunc runs one round and says whether it wrote anything.
type RoundFunc func(context.Context, Round) (wrote bool)

// Run calls round once with RoundFull, then whenever events or the resync
// timer say so, until ctx ends. Rounds never overlap.
func (w *Watcher) Run(ctx context.Context, round RoundFunc) {
	var wg sync.WaitGroup
	for _, sub := range w.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.keepSubscribed(ctx, sub)
		}()
	}
	w.loop(ctx, round)
	wg.Wait()
}

func (w *Watcher) loop(ctx context.Context, round RoundFunc) {
	var lastWrite time.Time
	if round(ctx, RoundFull) {
		lastWrite = time.Now()
	}
	resync := time.NewTimer(w.jittered())
	defer resync.Stop()
	debounce := time.NewTimer(0)
	stopTimer(debounce)
	defer debounce.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			if !pending {
				pending = true
				debounce.Reset(w.delay(lastWrite))
			}
		case <-debounce.C:
			pending = false
			if round(ctx, RoundEvents) {
				lastWrite = time.Now()
			}
		case <-w.lost:
			round(ctx, RoundFull)
		case <-resync.C:
			// Full rounds do not count towards MinInterval: it limits how
			// often events cause writes, and a resync must not delay the next event.
			round(ctx, RoundFull)
			resync.Reset(w.jittered())
		}
	}
}

// delay waits Debounce after the first event, but never lets an event round
// come closer than MinInterval to the last round that wrote.
func (w *Watcher) delay(lastWrite time.Time) time.Duration {
	return max(w.cfg.Debounce, time.Until(lastWrite.Add(w.cfg.MinInterval)))
}

func (w *Watcher) jittered() time.Duration {
	return w.cfg.Resync + time.Duration(rand.Int64N(int64(w.cfg.Resync/5)+1))
}

func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // a signal is already pending; one round covers both
	}
}

// keepSubscribed holds one subscription open for as long as ctx lives.
func (w *Watcher) keepSubscribed(ctx context.Context, sub Subscription) {
	backoff := 100 * time.Millisecond
	for first := true; ; first = false {
		if !first {
			w.restarts.WithLabelValues(sub.Name).Inc()
			signal(w.lost)
		}
		started := time.Now()
		err := w.subscribeOnce(ctx, sub)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.onError(err)
		}
		// A subscription that lived a while was healthy: start backing off afresh.
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// subscribeOnce returns when the subscription has ended or ctx is done.
func (w *Watcher) subscribeOnce(ctx context.Context, sub Subscription) error {
	done := make(chan struct{})
	onError := func(err error) {
		if ctx.Err() == nil { // closing the socket on shutdown is not news
			w.onError(err)
		}
	}
	ended, err := sub.Start(done, func() { signal(w.kick) }, onError)
	if err != nil {
		close(done)
		return err
	}
	select {
	case <-ctx.Done():
		close(done)
		<-ended
	case <-ended:
		close(done)
	}
	return nil
}
