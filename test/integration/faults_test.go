package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/jianfenliu/vmoperator/test/scale"
)

// faultInjector answers some of the controller's requests with an error
// instead of sending them, as a failing apiserver would. Rules match the
// method, the resource (as writeCounter names it) and the namespace, so a
// test only ever disturbs its own namespace.
type faultInjector struct {
	mu    sync.Mutex
	rules map[faultRule]int // rule → HTTP status to answer
}

type faultRule struct {
	method, resource, namespace string
}

var faults = &faultInjector{rules: map[faultRule]int{}}

// fail makes requests matching the rule fail with code until the returned
// function is called.
func (f *faultInjector) fail(method, resource, namespace string, code int) (heal func()) {
	rule := faultRule{method, resource, namespace}
	f.mu.Lock()
	f.rules[rule] = code
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.rules, rule)
		f.mu.Unlock()
	}
}

func (f *faultInjector) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		rule := faultRule{req.Method, scale.ResourceOf(req.URL.Path), namespaceOf(req.URL.Path)}
		f.mu.Lock()
		code, hit := f.rules[rule]
		f.mu.Unlock()
		if !hit {
			return next.RoundTrip(req)
		}
		body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected fault: %s %s","reason":"InternalError","code":%d}`,
			req.Method, req.URL.Path, code)
		return &http.Response{
			StatusCode: code, Status: http.StatusText(code), Request: req,
			Header: http.Header{"Content-Type": []string{"application/json"}},
			Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		}, nil
	})
}

// namespaceOf is the namespace in an API path, or "".
func namespaceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "namespaces" {
			return parts[i+1]
		}
	}
	return ""
}
