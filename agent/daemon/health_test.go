package daemon

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHealthzHandler drives the loops with a hand-moved clock through the
// limits serve derives from the flags.
func TestHealthzHandler(t *testing.T) {
	o, err := parseFlags([]string{"--node-name=n", "--resync=5m", "--lease-duration=40s", "--lease-renew-interval=10s", "--health-max-round=2m"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	rounds, renewals := livenessLoops(o, func() time.Time { return now })
	handler := healthz(rounds, renewals)
	steps := []struct {
		name     string
		act      func()
		wantCode int
		wantBody []string
	}{
		{name: "fresh", act: func() {}, wantCode: http.StatusOK, wantBody: []string{"ok"}},
		{name: "a round and a renewal begin", act: func() { rounds.Begin(); renewals.Begin(); now = now.Add(30 * time.Second) }, wantCode: http.StatusOK},
		{name: "the renewal outlasts its Lease", act: func() { now = now.Add(11 * time.Second) }, wantCode: http.StatusServiceUnavailable,
			wantBody: []string{"Lease renewal: one iteration has run for 41s, longer than 40s"}},
		{name: "the round outlasts its bound too", act: func() { now = now.Add(80 * time.Second) }, wantCode: http.StatusServiceUnavailable,
			wantBody: []string{"probe rounds: one iteration has run for 2m1s, longer than 2m0s", "Lease renewal"}},
		{name: "both end", act: func() { rounds.End(); renewals.End() }, wantCode: http.StatusOK},
		{name: "renewals stop", act: func() {
			for range 4 { // rounds keep going, every 10s, for 41s
				rounds.Begin()
				now = now.Add(10250 * time.Millisecond)
				rounds.End()
			}
		}, wantCode: http.StatusServiceUnavailable, wantBody: []string{"Lease renewal: no iteration has started for 41s, longer than 40s"}},
		{name: "renewals resume; no round for 11 minutes on a 5m resync", act: func() {
			for range 67 {
				renewals.Begin()
				renewals.End()
				now = now.Add(10 * time.Second)
			}
		}, wantCode: http.StatusServiceUnavailable, wantBody: []string{"probe rounds: no iteration has started for 11m10s, longer than 11m0s"}},
	}
	for _, step := range steps {
		step.act()
		rec := httptest.NewRecorder()
		handler(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		body := rec.Body.String()
		if rec.Code != step.wantCode {
			t.Errorf("%s: HTTP %d %q, want %d", step.name, rec.Code, body, step.wantCode)
		}
		for _, want := range step.wantBody {
			if !strings.Contains(body, want) {
				t.Errorf("%s: body %q lacks %q", step.name, body, want)
			}
		}
	}
}
