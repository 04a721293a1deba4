package liveness

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Limits bound one loop.
type Limits struct {
	// MaxBusy is the longest one iteration may run.
	MaxBusy time.Duration
	// MaxIdle is the longest the loop may wait, after an iteration ended (or
	// after the loop was created), before it begins the next one.
	MaxIdle time.Duration
}

// Loop records the iterations of one loop. It is safe for concurrent use;
// a nil Loop records nothing and is never wedged, so loops run without a
// health check need no special case.
type Loop struct {
	name   string
	limits Limits
	now    func() time.Time

	mu sync.Mutex
	// since is when the loop last changed state: created, began or ended.
	since time.Time
	busy  bool
}

// NewLoop starts tracking a loop named name (for messages); now is the clock.
func NewLoop(name string, limits Limits, now func() time.Time) *Loop {
	return &Loop{name: name, limits: limits, now: now, since: now()}
}

// Begin marks the start of an iteration.
func (l *Loop) Begin() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy, l.since = true, l.now()
}

// End marks the end of the running iteration.
func (l *Loop) End() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy, l.since = false, l.now()
}

// Check says why the loop is wedged, or nil when it is not.
func (l *Loop) Check() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	waited := l.now().Sub(l.since)
	switch {
	case l.busy && waited > l.limits.MaxBusy:
		return fmt.Errorf("%s: one iteration has run for %v, longer than %v", l.name, waited.Round(time.Second), l.limits.MaxBusy)
	case !l.busy && waited > l.limits.MaxIdle:
		return fmt.Errorf("%s: no iteration has started for %v, longer than %v", l.name, waited.Round(time.Second), l.limits.MaxIdle)
	}
	return nil
}

// Check joins the reasons of every wedged loop; nil when none is.
func Check(loops ...*Loop) error {
	var errs []error
	for _, l := range loops {
		errs = append(errs, l.Check())
	}
	return errors.Join(errs...)
}
