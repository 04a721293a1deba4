package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/metrics/secure"
)

// TestPrometheusScrapesWithTheScraperToken runs the environment's
// Prometheus (bin/prometheus, Debian's 2.42) on the configuration
// prometheusConfig writes, against two endpoints served as both
// components serve /metrics (HTTPS, self-signed, the apiserver's
// authn/authz filter) on the real test control plane: the target the
// token file's ServiceAccount may read is up, and the same endpoint
// scraped without the right (an account lacking the metrics-reader rules)
// is down with 403. make dev's own Prometheus is checked by test/e2e.
func TestPrometheusScrapesWithTheScraperToken(t *testing.T) {
	binary := filepath.Join(controlplane.BinDir(), "prometheus")
	if _, err := os.Stat(binary); err != nil {
		t.Fatalf("%s: %v (make promtool unpacks it)", binary, err)
	}
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	dir := t.TempDir()
	tokenFiles := map[string]string{}
	for name, canRead := range map[string]bool{"reader": true, "outsider": false} {
		scraper, err := cp.NewScraper(ctx, "default", name, canRead, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokenFiles[name] = filepath.Join(dir, name+"-token")
		if err := os.WriteFile(tokenFiles[name], []byte(scraper.Token), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	address := serveSecureMetrics(t, cp)

	var jobs []map[string]any
	for _, name := range []string{"reader", "outsider"} {
		config, err := prometheusConfig([]metricsTarget{{job: name, address: address}}, tokenFiles[name])
		if err != nil {
			t.Fatal(err)
		}
		var parsed struct {
			ScrapeConfigs []map[string]any `json:"scrape_configs"`
		}
		if err := yaml.Unmarshal(config, &parsed); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, parsed.ScrapeConfigs...)
	}
	config, err := yaml.Marshal(map[string]any{"global": map[string]string{"scrape_interval": "1s"}, "scrape_configs": jobs})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	web := freeAddress(t)
	cmd := exec.Command(binary, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logFile.Close() })

	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		health, err := targetHealth("http://" + web)
		last = fmt.Sprint(health, err)
		if err == nil && health["reader"] == "up " && health["outsider"] == "down server returned HTTP status 403 Forbidden" {
			t.Logf("targets: %v", health)
			return
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
	t.Fatalf("targets never became reader up, outsider down with 403: %s\n%s", last, raw)
}

// serveSecureMetrics serves a registry at /metrics the way both components
// do, on a loopback port it returns.
func serveSecureMetrics(t *testing.T, cp *controlplane.ControlPlane) string {
	t.Helper()
	registry := prometheus.NewRegistry()
	registry.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "vmop_test_up", Help: "Served."}))
	handler, err := secure.Authorized(cp.Config, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := secure.LoadCertificate("", "vmop-test")
	if err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", handler)
	server := &http.Server{Handler: mux, TLSConfig: secure.TLSConfig(cert), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.ServeTLS(listener, "", "") }()
	t.Cleanup(func() { _ = server.Close() })
	return listener.Addr().String()
}

// targetHealth maps each job to its target's health and last error.
func targetHealth(prometheusURL string) (map[string]string, error) {
	response, err := http.Get(prometheusURL + "/api/v1/targets")
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(response.Body).Decode(&body); err != nil {
		return nil, err
	}
	health := map[string]string{}
	for _, target := range body.Data.ActiveTargets {
		health[target.Labels["job"]] = target.Health + " " + target.LastError
	}
	return health, nil
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
