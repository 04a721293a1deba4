package integration

import (
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/jianfenliu/vmoperator/test/scale"
)

// writeCounter counts the controller's write requests by method, resource
// and namespace, through a transport wrapped around its REST config: the
// controller code is unchanged, the test sees every request it sends.
type writeCounter struct {
	mu     sync.Mutex
	counts map[writeKey]int
}

// writeKey is one kind of write: "PATCH virtualmachines" in a namespace
// ("" for cluster-scoped objects).
type writeKey struct {
	verb, namespace string
}

func newWriteCounter() *writeCounter {
	return &writeCounter{counts: map[writeKey]int{}}
}

func (w *writeCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		// Leader election renews its Lease every few seconds whatever the
		// profiles do; the controller writes no other Lease.
		if req.Method != http.MethodGet && scale.ResourceOf(req.URL.Path) != "leases" {
			w.mu.Lock()
			w.counts[writeKey{verb: req.Method + " " + scale.ResourceOf(req.URL.Path), namespace: namespaceOf(req.URL.Path)}]++
			w.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// snapshot copies the counts.
func (w *writeCounter) snapshot() map[writeKey]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.counts)
}

// since reports the writes after an earlier snapshot, in every namespace:
// total and a sorted breakdown by verb.
func (w *writeCounter) since(before map[writeKey]int) (int, string) {
	return w.sinceIn(before, func(string) bool { return true })
}

// sinceIn is since for the namespaces counted says yes to.
func (w *writeCounter) sinceIn(before map[writeKey]int, counted func(namespace string) bool) (int, string) {
	total := 0
	byVerb := map[string]int{}
	for key, n := range w.snapshot() {
		if delta := n - before[key]; delta > 0 && counted(key.namespace) {
			total += delta
			byVerb[key.verb] += delta
		}
	}
	lines := make([]string, 0, len(byVerb))
	for verb, n := range byVerb {
		lines = append(lines, fmt.Sprintf("%s=%d", verb, n))
	}
	sort.Strings(lines)
	return total, strings.Join(lines, " ")
}
