//go:build integration

package daemon

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// silentAPIServer accepts connections and never answers, as a wedged
// apiserver or a black-holed network path would.
func silentAPIServer(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); server.Close() })
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["silent"] = &clientcmdapi.Cluster{Server: server.URL}
	cfg.Contexts["silent"] = &clientcmdapi.Context{Cluster: "silent"}
	cfg.CurrentContext = "silent"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHealthzFailsWhenWedged runs serve against an apiserver that never
// answers: the first round and the first renewal hang in their API calls,
// so /healthz must turn 503 and name both loops, and serve must still shut
// down (every request is bounded by --api-timeout).
func TestHealthzFailsWhenWedged(t *testing.T) {
	const node = "node-wedged"
	ns := setupNode(t, node) // the Node exists on the test control plane, which this agent never reaches
	healthAddr := freeAddr(t)
	args := append(agentArgs(t, node, ns, freeAddr(t), healthAddr),
		"--kubeconfig="+silentAPIServer(t), "--verify-policies=false",
		"--health-max-round=1s", "--api-timeout=3s", "--lease-renew-interval=1s", "--lease-duration=2s")
	o, err := parseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	runServe(t, o)

	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get("http://" + healthAddr + "/healthz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "probe rounds: one iteration has run for") && strings.Contains(body, "Lease renewal: one iteration has run for") {
			t.Logf("/healthz: %s", strings.TrimSpace(body))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz = %d %q 15s into every API call hanging; want 503 naming both loops", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
