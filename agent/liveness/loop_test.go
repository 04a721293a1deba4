package liveness

import (
	"strings"
	"testing"
	"time"
)

// clock is a hand-moved clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLoopCheck(t *testing.T) {
	limits := Limits{MaxBusy: time.Minute, MaxIdle: 10 * time.Minute}
	cases := []struct {
		name    string
		run     func(l *Loop, c *clock)
		wantErr string // "" when alive
	}{
		{name: "just created", run: func(*Loop, *clock) {}},
		{name: "created, first iteration not yet due", run: func(_ *Loop, c *clock) { c.advance(10 * time.Minute) }},
		{name: "created, first iteration overdue", run: func(_ *Loop, c *clock) { c.advance(11 * time.Minute) },
			wantErr: "rounds: no iteration has started for 11m0s, longer than 10m0s"},
		{name: "iteration running within its bound", run: func(l *Loop, c *clock) { l.Begin(); c.advance(time.Minute) }},
		{name: "iteration running past its bound", run: func(l *Loop, c *clock) { l.Begin(); c.advance(61 * time.Second) },
			wantErr: "rounds: one iteration has run for 1m1s, longer than 1m0s"},
		{name: "a long idle wait does not count while busy", run: func(l *Loop, c *clock) {
			c.advance(9 * time.Minute)
			l.Begin()
			c.advance(59 * time.Second)
		}},
		{name: "ended, next not yet due", run: func(l *Loop, c *clock) {
			l.Begin()
			c.advance(50 * time.Second)
			l.End()
			c.advance(10 * time.Minute)
		}},
		{name: "idle measured from the end, not the start", run: func(l *Loop, c *clock) {
			l.Begin()
			c.advance(50 * time.Second)
			l.End()
			c.advance(10*time.Minute + time.Second)
		}, wantErr: "rounds: no iteration has started for 10m1s, longer than 10m0s"},
		{name: "many quick iterations", run: func(l *Loop, c *clock) {
			for range 100 {
				l.Begin()
				c.advance(time.Millisecond)
				l.End()
				c.advance(5 * time.Minute)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
			l := NewLoop("rounds", limits, c.now)
			tc.run(l, c)
			err := l.Check()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("Check() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckJoinsWedgedLoops(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	rounds := NewLoop("probe rounds", Limits{MaxBusy: time.Minute, MaxIdle: time.Hour}, c.now)
	lease := NewLoop("Lease renewal", Limits{MaxBusy: 40 * time.Second, MaxIdle: 40 * time.Second}, c.now)
	var untracked *Loop
	if err := Check(rounds, lease, untracked); err != nil {
		t.Fatalf("fresh loops wedged: %v", err)
	}
	rounds.Begin()
	c.advance(45 * time.Second)
	err := Check(rounds, lease, untracked)
	if err == nil || strings.Contains(err.Error(), "probe rounds") || !strings.Contains(err.Error(), "Lease renewal: no iteration has started for 45s") {
		t.Errorf("after 45s = %v, want only the Lease named", err)
	}
	c.advance(20 * time.Second)
	err = Check(rounds, lease)
	if err == nil || !strings.Contains(err.Error(), "probe rounds: one iteration has run for 1m5s") || !strings.Contains(err.Error(), "Lease renewal") {
		t.Errorf("after 65s = %v, want both named", err)
	}
}
