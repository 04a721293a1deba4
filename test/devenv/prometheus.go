package devenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// PrometheusAddress is where the environment's Prometheus listens.
const PrometheusAddress = "127.0.0.1:19090"

// Scrape and rule evaluation run every 2 s, so that what a test does shows
// in queries and alerts within seconds; alerts keep the for: of
// metrics/alerts.yaml, unchanged.
const prometheusInterval = "2s"

// metricsTarget is one component Prometheus scrapes, and the node it runs for.
type metricsTarget struct {
	job, address, node string
}

// metricsTargets are the controller and every node's agent.
func metricsTargets() []metricsTarget {
	targets := []metricsTarget{{job: "vmop-controller", address: controllerMetricsAddress}}
	for i, node := range hostNodes() {
		targets = append(targets, metricsTarget{job: "vmop-agent", address: fmt.Sprintf("127.0.0.1:%d", hostAgentMetricsPort+i), node: node.name})
	}
	for i, node := range vmNodes() {
		targets = append(targets, metricsTarget{job: "vmop-agent", address: fmt.Sprintf("127.0.0.1:%d", vmAgentMetricsPort+i), node: node.Name})
	}
	return targets
}

// prometheusConfig scrapes every target as the chart's PodMonitor does:
// HTTPS without verifying the self-signed certificates, the bearer token
// in tokenFile, agents' series labelled with their node. It loads
// metrics/alerts.yaml.
func prometheusConfig(targets []metricsTarget, tokenFile string) ([]byte, error) {
	type staticConfig struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels,omitempty"`
	}
	jobs := map[string][]staticConfig{}
	var order []string
	for _, t := range targets {
		if _, seen := jobs[t.job]; !seen {
			order = append(order, t.job)
		}
		config := staticConfig{Targets: []string{t.address}}
		if t.node != "" {
			config.Labels = map[string]string{"node": t.node}
		}
		jobs[t.job] = append(jobs[t.job], config)
	}
	scrapeConfigs := make([]map[string]any, 0, len(order))
	for _, job := range order {
		scrapeConfigs = append(scrapeConfigs, map[string]any{
			"job_name": job, "static_configs": jobs[job], "scheme": "https",
			"tls_config":    map[string]any{"insecure_skip_verify": true},
			"authorization": map[string]string{"type": "Bearer", "credentials_file": tokenFile},
		})
	}
	config, err := yaml.Marshal(map[string]any{
		"global":         map[string]string{"scrape_interval": prometheusInterval, "evaluation_interval": prometheusInterval},
		"rule_files":     []string{filepath.Join(controlplane.RepoRoot(), "metrics", "alerts.yaml")},
		"scrape_configs": scrapeConfigs,
	})
	if err != nil {
		return nil, fmt.Errorf("prometheus config: %w", err)
	}
	return config, nil
}

// startPrometheus runs Debian's Prometheus (bin/prometheus, which make
// unpacks from the package) on the environment's metrics.
func (env *Env) startPrometheus(ctx context.Context) error {
	binary := filepath.Join(controlplane.RepoRoot(), "bin", "prometheus")
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("prometheus: %w (make dev and make test unpack it from Debian's prometheus package)", err)
	}
	tokenFile, err := env.scraperToken(ctx)
	if err != nil {
		return err
	}
	config, err := prometheusConfig(metricsTargets(), tokenFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(env.path("prometheus.yml"), config, 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(env.path("prometheus.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(binary, "--config.file="+env.path("prometheus.yml"),
		"--storage.tsdb.path="+env.path("prometheus-data"), "--web.listen-address="+PrometheusAddress)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("prometheus: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	env.onStop(func() error {
		_ = cmd.Process.Kill()
		<-exited
		return nil
	})
	if err := waitReady(ctx, "http://"+PrometheusAddress+"/-/ready", exited, 30*time.Second); err != nil {
		return fmt.Errorf("prometheus (log %s): %w", env.path("prometheus.log"), err)
	}
	env.PrometheusURL = "http://" + PrometheusAddress
	env.logf("Prometheus on %s: the controller and %d agents every %s over HTTPS with the token of ServiceAccount %s/%s (in %s), the alerts of metrics/alerts.yaml (log %s)",
		env.PrometheusURL, len(metricsTargets())-1, prometheusInterval, LeaseNamespace, ScraperAccount, tokenFile, env.path("prometheus.log"))
	return nil
}

// scraperTokenLifetime outlasts any development session; the control
// plane, and the token with it, goes away on Stop.
const scraperTokenLifetime = 30 * 24 * time.Hour

// ScraperAccount is the ServiceAccount whose token the environment's
// Prometheus presents: bound to the chart's metrics-reader rules
// (GET /metrics) and nothing else, as the chart's PodMonitor scraper.
const ScraperAccount = "prometheus"

// scraperToken makes ScraperAccount and writes a token of it to a file
// for Prometheus's credentials_file; it returns the file's path.
func (env *Env) scraperToken(ctx context.Context) (string, error) {
	scraper, err := env.ControlPlane.NewScraper(ctx, LeaseNamespace, ScraperAccount, true, scraperTokenLifetime)
	if err != nil {
		return "", fmt.Errorf("prometheus: %w", err)
	}
	path := env.path("prometheus-token")
	if err := os.WriteFile(path, []byte(scraper.Token), 0o600); err != nil {
		return "", fmt.Errorf("prometheus: %w", err)
	}
	return path, nil
}

// waitReady polls url until it answers 200, the process exits or timeout passes.
func waitReady(ctx context.Context, url string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("request %s: %w", url, err)
		}
		if response, err := http.DefaultClient.Do(request); err == nil {
			response.Body.Close()
			if response.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", url, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v", url, timeout)
		}
	}
}
