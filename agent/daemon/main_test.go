//go:build integration

package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	controlplane.RunTests(m, &cp)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scraper returns a bearer token of a new ServiceAccount: allowed to GET
// /metrics (the chart's metrics-reader rules) when canRead, otherwise
// authenticated only. Deleted when the test ends.
func scraper(t *testing.T, name string, canRead bool) string {
	t.Helper()
	ctx := context.Background()
	s, err := cp.NewScraper(ctx, "default", name, canRead, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(ctx, cp) })
	return s.Token
}

// scrape gets the agent's /metrics over HTTPS with token as bearer.
func scrape(addr, token string) (int, string) {
	return controlplane.ScrapeHTTPS("https://"+addr+"/metrics", token)
}

func setupNode(t *testing.T, name string) *netnstest.Namespace {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vmop-" + name}},
	} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	ns := netnstest.New(t)
	ns.Bridge(t, "br-main")
	ns.VethPair(t, "main-p0", "main-q0", "br-main")
	return ns
}

func agentArgs(t *testing.T, node string, ns *netnstest.Namespace, metricsAddr, healthAddr string) []string {
	return []string{
		"--node-name=" + node, "--kubeconfig=" + cp.Kubeconfig, "--lease-namespace=vmop-" + node,
		"--metrics-bind-address=" + metricsAddr, "--health-probe-bind-address=" + healthAddr,
		"--netns=" + fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns.NS)),
		"--sysfs-root=" + emptySysfs(t), "--lease-renew-interval=1s", "--lease-duration=5s",
	}
}

// emptySysfs is a sysfs without SR-IOV devices, so the test does not depend
// on the host's NICs.
func emptySysfs(t *testing.T) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "class", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunServesAndShutsDown runs the real entry point in-process: it
// publishes, renews its Lease, serves /metrics (over HTTPS, to a token
// allowed to GET /metrics only) and /readyz, and on SIGTERM exits 0.
func TestRunServesAndShutsDown(t *testing.T) {
	const node = "node-main"
	ns := setupNode(t, node)
	metricsAddr, healthAddr := freeAddr(t), freeAddr(t)
	exit := make(chan int, 1)
	go func() { exit <- Run(agentArgs(t, node, ns, metricsAddr, healthAddr)) }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := get("http://" + healthAddr + "/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("agent never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get("http://" + healthAddr + "/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz of a healthy agent = %d %q, want 200 ok", code, body)
	}
	nc := &vmv1alpha1.NodeCapability{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Name: node}, nc); err != nil {
		t.Fatal(err)
	}
	if len(nc.Status.Bridges) != 1 || nc.Status.Bridges[0].Name != "br-main" {
		t.Errorf("bridges = %+v, want br-main from the probed namespace", nc.Status.Bridges)
	}
	lease := &coordinationv1.Lease{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Namespace: "vmop-" + node, Name: node}, lease); err != nil {
		t.Errorf("Lease: %v", err)
	}
	reader, outsider := scraper(t, "scraper-main", true), scraper(t, "outsider-main", false)
	code, body := scrape(metricsAddr, reader)
	for _, want := range []string{
		`vmop_node_build_info{goversion=`,
		`vmop_node_link_up{interface="br-main",role="bridge"} 1`,
		`vmop_node_capability_writes_total 2`,
		`vmop_node_netlink_subscription_restarts_total{subscription="link"} 0`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics (HTTP %d) lacks %q", code, want)
		}
	}

	t.Run("promtool check metrics", func(t *testing.T) { promtoolCheck(t, body) })
	t.Run("metrics refused without an authorized token", func(t *testing.T) {
		for _, tc := range []struct {
			name, token string
			want        int
		}{
			{name: "no token", want: http.StatusUnauthorized},
			{name: "a token without GET /metrics", token: outsider, want: http.StatusForbidden},
			// controller-runtime's filter answers a token the TokenReview
			// rejects with 500 "Authentication failed" (it reports the
			// authenticator's error, not a 401), but serves nothing.
			{name: "a token the apiserver did not issue", token: "not-a-token", want: http.StatusInternalServerError},
		} {
			if code, body := scrape(metricsAddr, tc.token); code != tc.want || strings.Contains(body, "vmop_node") {
				t.Errorf("/metrics with %s = %d %q, want %d and no metrics", tc.name, code, body, tc.want)
			}
		}
		// Plain HTTP to the TLS port: Go's TLS server answers 400.
		if code, body := get("http://" + metricsAddr + "/metrics"); code != http.StatusBadRequest || strings.Contains(body, "vmop_node") {
			t.Errorf("plain-HTTP /metrics = %d %q, want 400", code, body)
		}
	})

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code after SIGTERM = %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not shut down within 10s of SIGTERM")
	}
	if code, _ := get("http://" + healthAddr + "/healthz"); code != 0 {
		t.Errorf("health endpoint still answers after shutdown")
	}
}

// promtoolCheck runs Prometheus's own linter over a real scrape. promtool
// comes from Debian's prometheus package (make promtool).
func promtoolCheck(t *testing.T, scrape string) {
	promtool := filepath.Join(controlplane.BinDir(), "promtool")
	if _, err := os.Stat(promtool); err != nil {
		t.Fatalf("%s missing; run `make promtool`: %v", promtool, err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("promtool check metrics: clean over %d lines", strings.Count(scrape, "\n"))
}

func metricLine(scrape, prefix string) string {
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func rss(t *testing.T, pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(metricLine(string(raw), "VmRSS:"), "VmRSS:"))
}

// cpuTime is utime+stime from /proc/PID/stat (clock ticks of 10ms).
func cpuTime(t *testing.T, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestMetricsServerTLSUnlessTurnedOff: the metrics server has TLS (and the
// filter) by default and none with --metrics-secure=false; an empty
// address makes no server.
func TestMetricsServerTLSUnlessTurnedOff(t *testing.T) {
	m := agentmetrics.NewNode("test")
	for _, secure := range []bool{true, false} {
		server, err := newMetricsServer(context.Background(), options{metricsAddr: "127.0.0.1:0", metricsSecure: secure}, cp.Config, m, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		if (server.TLSConfig != nil) != secure {
			t.Errorf("--metrics-secure=%v: TLS config %v", secure, server.TLSConfig)
		}
	}
	if server, err := newMetricsServer(context.Background(), options{metricsSecure: true}, cp.Config, m, logr.Discard()); server != nil || err != nil {
		t.Errorf("no address: server %v, error %v; want neither", server, err)
	}
}
