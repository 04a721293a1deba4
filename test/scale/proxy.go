package scale

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// Proxy stands between one client (the controller) and the apiserver. It
// forwards every request with the identity it was given, counts the writes
// and, when told to, fails a share of them the way an overloaded or broken
// apiserver does.
type Proxy struct {
	server   *http.Server
	listener net.Listener

	mu        sync.Mutex
	writes    map[string]int // "VERB resource" → count
	faultRate float64
	random    *rand.Rand
	injected  map[int]int // status code → how many writes were answered with it
}

// StartProxy listens on a free loopback port and forwards to the apiserver
// of config as the user impersonate.
func StartProxy(config *rest.Config, impersonate string) (*Proxy, error) {
	upstream := rest.CopyConfig(config)
	upstream.Impersonate = rest.ImpersonationConfig{UserName: impersonate}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("make a transport to %s as %s: %w", config.Host, impersonate, err)
	}
	target, err := url.Parse(config.Host)
	if err != nil {
		return nil, fmt.Errorf("parse the apiserver address %q: %w", config.Host, err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on a loopback port for the proxy to %s: %w", config.Host, err)
	}
	p := &Proxy{
		listener: listener,
		writes:   map[string]int{},
		injected: map[int]int{},
		random:   rand.New(rand.NewPCG(11, 7)),
	}
	forward := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport: transport,
		// Watches stream: pass every event on at once.
		FlushInterval: -1,
		// A client that hangs up (a killed controller) is not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.server = &http.Server{Handler: p.handler(forward)}
	go func() { _ = p.server.Serve(listener) }()
	return p, nil
}

// URL is where clients reach the proxy (plain HTTP on loopback).
func (p *Proxy) URL() string { return "http://" + p.listener.Addr().String() }

// Config is a REST config for a client in this process that goes through the proxy.
func (p *Proxy) Config() *rest.Config { return &rest.Config{Host: p.URL()} }

// WriteKubeconfig writes a kubeconfig pointing at the proxy into dir.
func (p *Proxy) WriteKubeconfig(dir string) (string, error) {
	path := filepath.Join(dir, "controller.kubeconfig")
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: proxy
  cluster:
    server: %s
contexts:
- name: proxy
  context:
    cluster: proxy
    user: controller
    namespace: default
users:
- name: controller
  user: {}
current-context: proxy
`, p.URL())
	return path, os.WriteFile(path, []byte(content), 0o600)
}

// SetFaultRate makes a share (0 to 1) of the writes fail from now on: half
// of the failures are 429 Too Many Requests with Retry-After, half 500.
func (p *Proxy) SetFaultRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faultRate = rate
}

// Injected says how many writes were failed, by status code.
func (p *Proxy) Injected() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyCounts(p.injected)
}

// Writes is a copy of the write counts so far, by "VERB resource".
func (p *Proxy) Writes() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyCounts(p.writes)
}

// Close stops the proxy, cutting every open watch.
func (p *Proxy) Close() error {
	err := p.server.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("close the proxy on %s: %w", p.listener.Addr(), err)
	}
	return nil
}

func (p *Proxy) handler(forward http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWrite(r.Method) {
			if code := p.countWrite(r); code != 0 {
				writeFault(w, r, code)
				return
			}
		}
		forward.ServeHTTP(w, r)
	})
}

// countWrite counts a write and decides whether it fails: 0 lets it through.
// Failed writes are counted too: the controller sent them.
func (p *Proxy) countWrite(r *http.Request) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes[r.Method+" "+ResourceOf(r.URL.Path)]++
	if p.faultRate == 0 || p.random.Float64() >= p.faultRate {
		return 0
	}
	code := http.StatusInternalServerError
	if p.random.IntN(2) == 0 {
		code = http.StatusTooManyRequests
	}
	p.injected[code]++
	return code
}

func writeFault(w http.ResponseWriter, r *http.Request, code int) {
	reason := "InternalError"
	if code == http.StatusTooManyRequests {
		reason = "TooManyRequests"
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected fault: %s %s","reason":%q,"code":%d}`,
		r.Method, r.URL.Path, reason, code)
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// ResourceOf turns an API path into its resource and subresource:
// /apis/g/v/namespaces/ns/kind/name/status → kind/status.
func ResourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) > 0 && parts[0] == "api":
		parts = parts[min(2, len(parts)):]
	case len(parts) > 0 && parts[0] == "apis":
		parts = parts[min(3, len(parts)):]
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return "?"
	case 3:
		return parts[0] + "/" + parts[2]
	default:
		return parts[0]
	}
}

func copyCounts[K comparable](m map[K]int) map[K]int {
	out := make(map[K]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
