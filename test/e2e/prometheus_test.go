//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
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

// scalarQuery returns the value of expr, which must yield one series.
// settledScalar is expr's value once three scrapes in a row saw no
// change: frames an earlier test sent may reach Prometheus a scrape or two
// after it ended, and counted from a stale start they look like ours.
func settledScalar(t *testing.T, expr string) float64 {
	t.Helper()
	last, same := scalarQuery(t, expr), 0
	for deadline := time.Now().Add(time.Minute); same < 3 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Second) // the environment's scrape interval
		now := scalarQuery(t, expr)
		if now == last {
			same++
		} else {
			last, same = now, 0
		}
	}
	if same < 3 {
		t.Fatalf("%s kept changing for a minute (last %v)", expr, last)
	}
	return last
}

func scalarQuery(t *testing.T, expr string) float64 {
	t.Helper()
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := promGet(t, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Result) != 1 {
		t.Fatalf("%s: %d series, want 1", expr, len(data.Result))
	}
	text, _ := data.Result[0].Value[1].(string)
	value, err := strconv.ParseFloat(text, 64)
	if err != nil {
		t.Fatalf("%s: value %v: %v", expr, data.Result[0].Value, err)
	}
	return value
}

// dashboardQueries reads every panel query of deploy/dashboards, with the
// template variables as Grafana fills them for "All" and a 2 s scrape.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "deploy", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	fill := strings.NewReplacer("$node", ".*", "$interface", ".*", "$vlan", ".*", "$__rate_interval", "30s")
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
	// The per-VLAN series appear with the first frame a counted port sees.
	if err := env.SendFrames("node-c", 100, 10); err != nil {
		t.Fatal(err)
	}

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
		// Up over HTTPS: each component reviewed Prometheus's token
		// (the metrics-reader rules) with the apiserver and served it.
		var down []string
		for _, target := range data.ActiveTargets {
			if target.Health != "up" || !strings.HasPrefix(target.ScrapeURL, "https://") {
				down = append(down, target.ScrapeURL+": "+target.Health+" "+target.LastError)
			}
		}
		return len(data.ActiveTargets) == 4 && len(down) == 0, fmt.Sprintf("%d targets, not up over HTTPS: %v", len(data.ActiveTargets), down)
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
		return checked == 16 && len(problems) == 0, fmt.Sprintf("%d rules ok; %s", checked, strings.Join(problems, "; "))
	})
	t.Logf("%d alert rules evaluated without error, every metric they read present (%d reads of kube-state-metrics not checked here)", checked, unchecked)
}

// TestVLANTrafficShowsInThePerVLANPanel sends tagged frames into node-c's
// uplink from the far end of its cable and finds exactly them in
// Prometheus: node-c carries no VLAN, so they count as "other", received
// and disallowed, and the "Frames per VLAN" panel's query shows them.
func TestVLANTrafficShowsInThePerVLANPanel(t *testing.T) {
	// node-a and node-b run Debian's 6.1 kernel, older than tcx: their
	// agents count through cls_bpf on clsact; node-c, on this host, uses tcx.
	for node, hook := range map[string]string{"node-a": "clsact", "node-b": "clsact", "node-c": "tcx"} {
		observe.Eventually(t, 30*time.Second, node+" counting per VLAN with "+hook, func() (bool, string) {
			var capability vmv1alpha1.NodeCapability
			if err := c().Get(context.Background(), client.ObjectKey{Name: node}, &capability); err != nil {
				return false, err.Error()
			}
			counting := meta.FindStatusCondition(capability.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
			if counting == nil {
				return false, "no VLANCountersReady"
			}
			return counting.Status == metav1.ConditionTrue && strings.Contains(counting.Message, " "+hook+" "),
				fmt.Sprintf("%s %s %q", counting.Status, counting.Reason, counting.Message)
		})
	}
	const frames = 250
	counter := `sum(vmop_node_vlan_packets_total{node="node-c", interface="eth1", vlan="other", direction="receive"}) or vector(0)`
	// One frame first, so the series exists before the burst: rate() does
	// not count what a series holds at its first sample.
	initial := settledScalar(t, counter)
	if err := env.SendFrames("node-c", 3001, 1); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "the first frame of VLAN other on node-c eth1 in Prometheus", func() (bool, string) {
		got := scalarQuery(t, counter)
		return got == initial+1, fmt.Sprintf("%v → %v", initial, got)
	})
	before := initial + 1
	sent := time.Now()
	if err := env.SendFrames("node-c", 3001, frames); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, time.Minute, fmt.Sprintf("%d more frames of VLAN other on node-c eth1", frames), func() (bool, string) {
		got := scalarQuery(t, counter)
		return got == before+frames, fmt.Sprintf("%v → %v", before, got)
	})
	t.Logf("%d tagged frames sent into node-c eth1 → counted exactly in Prometheus after %v", frames, time.Since(sent).Round(100*time.Millisecond))
	var panel string
	for name, expr := range dashboardQueries(t) {
		if strings.Contains(name, "/ Frames per VLAN /") {
			panel = expr
		}
	}
	if panel == "" {
		t.Fatal("no Frames per VLAN panel in deploy/dashboards")
	}
	panel = strings.Replace(panel, `node=~".*"`, `node="node-c"`, 1)
	observe.Eventually(t, 30*time.Second, "the Frames per VLAN panel shows node-c eth1 VLAN other", func() (bool, string) {
		n, err := instantQuery(t, `(`+panel+`) > 0 and on(node, interface, vlan, direction) vmop_node_vlan_packets_total{interface="eth1", vlan="other", direction="receive"}`)
		return err == nil && n == 1, fmt.Sprintf("%d series (%v) for %s", n, err, panel)
	})
	if got := scalarQuery(t, `sum(vmop_node_vlan_disallowed_packets_total{node="node-c", interface="eth1", vlan="other"}) or vector(0)`); got != 0 {
		t.Errorf("node-c eth1 is a port of br-lan, which filters no VLAN, yet %v frames count as disallowed", got)
	}
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
