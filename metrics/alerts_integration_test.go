//go:build integration

package metrics

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// promtool is the one make builds into bin/ from Debian's prometheus package.
func promtool(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "bin", "promtool")
}

// TestAlertRules checks alerts.yaml with promtool and runs its unit tests
// (alerts_test.yaml: synthetic series, the alerts and messages they must fire).
func TestAlertRules(t *testing.T) {
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		out, err := exec.Command(promtool(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
		t.Logf("promtool %v:\n%s", args, out)
	}
}
