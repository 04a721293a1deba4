package integration

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/jianfenliu/vmoperator/test/scale"
)

// writeCounter counts the controller's write requests by method and
// resource, through a transport wrapped around its REST config: the
// controller code is unchanged, the test sees every request it sends.
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newWriteCounter() *writeCounter {
	return &writeCounter{counts: map[string]int{}}
}

func (w *writeCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		// Leader election renews its Lease every few seconds whatever the
		// profiles do; the controller writes no other Lease.
		if req.Method != http.MethodGet && scale.ResourceOf(req.URL.Path) != "leases" {
			w.mu.Lock()
			w.counts[req.Method+" "+scale.ResourceOf(req.URL.Path)]++
			w.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// snapshot copies the counts.
func (w *writeCounter) snapshot() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	copied := make(map[string]int, len(w.counts))
	for k, v := range w.counts {
		copied[k] = v
	}
	return copied
}

// since reports the writes after an earlier snapshot: total and a sorted breakdown.
func (w *writeCounter) since(before map[string]int) (int, string) {
	total := 0
	var lines []string
	for key, n := range w.snapshot() {
		if delta := n - before[key]; delta > 0 {
			total += delta
			lines = append(lines, fmt.Sprintf("%s=%d", key, delta))
		}
	}
	sort.Strings(lines)
	return total, strings.Join(lines, " ")
}
