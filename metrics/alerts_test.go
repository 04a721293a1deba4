package metrics

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// runbookBase is where every alert's runbook_url points: docs/runbooks/ on main.
const runbookBase = "https://github.com/jianfenliu/vmoperator/blob/main/docs/runbooks/"

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			AlertName string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertIsCompleteAndTested: every alert has a severity, a for, a
// summary and a runbook_url whose runbook exists in docs/runbooks/, and
// alerts_test.yaml makes each one fire at least once.
func TestEveryAlertIsCompleteAndTested(t *testing.T) {
	var rules ruleFile
	readYAML(t, "alerts.yaml", &rules)
	var tests ruleTests
	readYAML(t, "alerts_test.yaml", &tests)
	fired := map[string]bool{}
	for _, test := range tests.Tests {
		for _, tc := range test.AlertRuleTest {
			if len(tc.ExpAlerts) > 0 {
				fired[tc.AlertName] = true
			}
		}
	}
	count := 0
	for _, group := range rules.Groups {
		for _, rule := range group.Rules {
			if rule.Alert == "" {
				continue
			}
			count++
			name := rule.Alert
			if s := rule.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", name, s)
			}
			if rule.For == "" {
				t.Errorf("%s: no for", name)
			}
			if rule.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", name)
			}
			if got, want := rule.Annotations["runbook_url"], runbookBase+name+".md"; got != want {
				t.Errorf("%s: runbook_url %q, want %q", name, got, want)
			}
			if _, err := os.Stat(filepath.Join("..", "docs", "runbooks", name+".md")); err != nil {
				t.Errorf("%s: runbook: %v", name, err)
			}
			if !fired[name] {
				t.Errorf("%s: alerts_test.yaml never makes it fire", name)
			}
		}
	}
	if count == 0 {
		t.Fatal("alerts.yaml has no alerts")
	}
	t.Logf("%d alerts, each with severity, for, summary, runbook and a firing test", count)
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
