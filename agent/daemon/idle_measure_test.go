//go:build integration && measure

package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestIdleFootprint builds the binary, runs it against the control plane
// for VMOP_MEASURE_IDLE (default 60s) and reports RSS and CPU time. It is a
// measurement, not a check, so it is built only with the "measure" tag:
// `make measure-idle` runs it; `make test` neither runs nor skips it.
func TestIdleFootprint(t *testing.T) {
	period := os.Getenv("VMOP_MEASURE_IDLE")
	if period == "" {
		period = "60s"
	}
	idle, err := time.ParseDuration(period)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "vmop-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/vmop-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const node = "node-idle"
	ns := setupNode(t, node)
	metricsAddr := freeAddr(t)
	// The child opens the namespace through this process's /proc/PID/fd entry.
	cmd := exec.Command(bin, append(agentArgs(t, node, ns, metricsAddr, freeAddr(t)),
		"--lease-renew-interval=10s", "--lease-duration=40s", "--resync=5m")...) // production timings
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	token := scraper(t, "scraper-idle", true)
	time.Sleep(5 * time.Second) // start-up, first round
	cpu0 := cpuTime(t, cmd.Process.Pid)
	_, before := scrape(metricsAddr, token)
	time.Sleep(idle)
	cpu1 := cpuTime(t, cmd.Process.Pid)
	_, after := scrape(metricsAddr, token)
	t.Logf("idle %v: RSS %s, CPU %v (%.3f%% of one core); writes before %q after %q",
		idle, rss(t, cmd.Process.Pid), cpu1-cpu0, 100*float64(cpu1-cpu0)/float64(idle),
		metricLine(before, "vmop_node_capability_writes_total "), metricLine(after, "vmop_node_capability_writes_total "))
	if metricLine(before, "vmop_node_capability_writes_total ") != metricLine(after, "vmop_node_capability_writes_total ") {
		t.Errorf("capability writes while idle")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
