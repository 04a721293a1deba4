package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// promGet calls the environment's Prometheus HTTP API and decodes its data.
func promGet(t *testing.T, path string, params url.Values, into any) error {
	t.Helper()
	response, err := http.Get(env.PrometheusURL + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	var envelope struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return fmt.Errorf("%s: %w: %s", path, err, body)
	}
	if envelope.Status != "success" {
		return fmt.Errorf("%s %v: %s", path, params, envelope.Error)
	}
	return json.Unmarshal(envelope.Data, into)
}

// instantQuery returns how many series expr yields now.
func instantQuery(t *testing.T, expr string) (int, error) {
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := promGet(t, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return 0, err
	}
	return len(data.Result), nil
}

// dashboardQueries reads every panel query of deploy/dashboards, with the
// template variables as Grafana fills them for "All" and a 2 s scrape.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "deploy", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	fill := strings.NewReplacer("$node", ".*", "$interface", ".*", "$__rate_interval", "30s")
	queries := map[string]string{}
	for _, file := range files {
		var board struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr   string `json:"expr"`
					Legend string `json:"legendFormat"`
				} `json:"targets"`
			} `json:"panels"`
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &board); err != nil {
			t.Fatal(err)
		}
		for _, panel := range board.Panels {
			for _, target := range panel.Targets {
				queries[fmt.Sprintf("%s / %s / %s", filepath.Base(file), panel.Title, target.Legend)] = fill.Replace(target.Expr)
			}
		}
	}
	return queries
}

// TestEveryPanelAndAlertHasDataOnTheLivePrometheus: the environment's
// Prometheus scrapes the controller and the three agents; every query of
// every dashboard panel returns series, and every alert rule of
// metrics/alerts.yaml evaluates without error with each metric it reads
// present, except kube-state-metrics' (not part of the environment).
func TestEveryPanelAndAlertHasDataOnTheLivePrometheus(t *testing.T) {
	// A profile reaching Running gives the time-to-Ready histogram a
	// sample; one on a bridge no HostNetwork declares is refused, so the
	// not-Ready-by-reason panel has a reason to show.
	ns := newNamespace(t)
	create(t, profile("metrics-1", ns, "br-lan", false))
	create(t, profile("metrics-2", ns, "br-undeclared", false))
	waitForPhase(t, ns, "metrics-1", "Running")
	observe.Eventually(t, 30*time.Second, "metrics-2 refused", func() (bool, string) {
		p := get(t, ns, "metrics-2")
		ready := meta.FindStatusCondition(p.Status.Conditions, vmv1alpha1.ConditionReady)
		return ready != nil && ready.Status == metav1.ConditionFalse, observe.Describe(p)
	})

	observe.Eventually(t, time.Minute, "every target up", func() (bool, string) {
		var data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := promGet(t, "/api/v1/targets", url.Values{}, &data); err != nil {
			return false, err.Error()
		}
		var down []string
		for _, target := range data.ActiveTargets {
			if target.Health != "up" {
				down = append(down, target.ScrapeURL+": "+target.Health+" "+target.LastError)
			}
		}
		return len(data.ActiveTargets) == 4 && len(down) == 0, fmt.Sprintf("%d targets, not up: %v", len(data.ActiveTargets), down)
	})

	queries := dashboardQueries(t)
	observe.Eventually(t, time.Minute, "every panel query returns series", func() (bool, string) {
		var empty []string
		for name, expr := range queries {
			n, err := instantQuery(t, expr)
			if err != nil || n == 0 {
				empty = append(empty, fmt.Sprintf("%s (%s): %d series, %v", name, expr, n, err))
			}
		}
		slices.Sort(empty)
		return len(empty) == 0, strings.Join(empty, "\n")
	})
	t.Logf("%d dashboard panel queries returned series", len(queries))

	metricName := regexp.MustCompile(`\b(vmop_[a-z_]+|controller_runtime_[a-z_]+|kube_[a-z_]+)\b`)
	var checked, unchecked int
	observe.Eventually(t, time.Minute, "every alert rule evaluated, its metrics present", func() (bool, string) {
		var data struct {
			Groups []struct {
				Rules []struct {
					Name           string `json:"name"`
					Query          string `json:"query"`
					Health         string `json:"health"`
					LastError      string `json:"lastError"`
					LastEvaluation string `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := promGet(t, "/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
			return false, err.Error()
		}
		checked, unchecked = 0, 0
		var problems []string
		for _, group := range data.Groups {
			for _, rule := range group.Rules {
				if rule.Health != "ok" {
					problems = append(problems, fmt.Sprintf("%s: health %q %s", rule.Name, rule.Health, rule.LastError))
					continue
				}
				for _, name := range metricName.FindAllString(rule.Query, -1) {
					if strings.HasPrefix(name, "kube_") {
						unchecked++
						continue
					}
					if n, err := instantQuery(t, fmt.Sprintf(`count({__name__=%q})`, name)); err != nil || n == 0 {
						problems = append(problems, fmt.Sprintf("%s: no series of %s (%v)", rule.Name, name, err))
					}
				}
				checked++
			}
		}
		return checked == 14 && len(problems) == 0, fmt.Sprintf("%d rules ok; %s", checked, strings.Join(problems, "; "))
	})
	t.Logf("%d alert rules evaluated without error, every metric they read present (%d reads of kube-state-metrics not checked here)", checked, unchecked)
}

// TestBridgeDownAlertFires takes br-lan down on node-c and waits for
// Prometheus itself to fire VmopBridgeDown for it (for: 1m), then brings it
// up and waits for the alert to go.
func TestBridgeDownAlertFires(t *testing.T) {
	if err := env.SetLink("node-c", "br-lan", false); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Cleanup(func() { _ = env.SetLink("node-c", "br-lan", true) })
	alert := func() string {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := promGet(t, "/api/v1/alerts", url.Values{}, &data); err != nil {
			return err.Error()
		}
		for _, a := range data.Alerts {
			if a.Labels["alertname"] == "VmopBridgeDown" && a.Labels["node"] == "node-c" && a.Labels["interface"] == "br-lan" {
				return a.State
			}
		}
		return "absent"
	}
	observe.Eventually(t, 2*time.Minute, "VmopBridgeDown firing for node-c br-lan", func() (bool, string) {
		state := alert()
		return state == "firing", state
	})
	t.Logf("br-lan down → VmopBridgeDown firing in Prometheus after %v (for: 1m, scrape and evaluation every 2s)", time.Since(down).Round(100*time.Millisecond))
	if err := env.SetLink("node-c", "br-lan", true); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "VmopBridgeDown gone", func() (bool, string) {
		state := alert()
		return state == "absent", state
	})
}
