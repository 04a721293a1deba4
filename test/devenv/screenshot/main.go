// Command screenshot brings up the development environment (package devenv),
// lets its Prometheus collect a minute and a half of node network health
// series while br-lan on node-c goes down and up, and saves headless
// Chromium's screenshot of Prometheus' graph page for the Carrier panel's
// query. `make screenshot` runs it; it needs root (like make dev) and
// Debian's chromium.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/devenv"
)

// The Carrier panel of the node network health dashboard, for every node
// and interface.
const carrierQuery = `vmop_node_link_carrier`

func main() {
	out := flag.String("out", filepath.Join(controlplane.RepoRoot(), "docs", "images", "prometheus-carrier.png"), "PNG to write")
	agent := flag.String("agent", filepath.Join(controlplane.RepoRoot(), "bin", "vmop-agent"), "vmop-agent binary to run on each node")
	flag.Parse()
	if err := run(*out, *agent); err != nil {
		fmt.Fprintln(os.Stderr, "screenshot:", err)
		os.Exit(1)
	}
}

func run(out, agent string) (err error) {
	ctx := context.Background()
	env, err := devenv.Start(ctx, devenv.Options{AgentBinary: agent, Log: os.Stderr, ControllerLogger: logr.Discard()})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := env.Stop(); err == nil {
			err = stopErr
		}
	}()
	// 30 s up, 20 s down, 30 s up again: one dip on node-c's br-lan.
	time.Sleep(30 * time.Second)
	if err := env.SetLink("node-c", "br-lan", false); err != nil {
		return err
	}
	time.Sleep(20 * time.Second)
	if err := env.SetLink("node-c", "br-lan", true); err != nil {
		return err
	}
	time.Sleep(30 * time.Second)
	page := env.PrometheusURL + "/graph?" + url.Values{
		"g0.expr": {carrierQuery}, "g0.tab": {"0"}, "g0.range_input": {"2m"}, "g0.stacked": {"0"},
	}.Encode()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// Root needs --no-sandbox; the virtual time budget lets the page's
	// scripts query Prometheus and draw before the shot.
	shot := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1400,900", "--virtual-time-budget=15000", "--screenshot="+out, page)
	if output, err := shot.CombinedOutput(); err != nil {
		return fmt.Errorf("chromium: %w: %s", err, output)
	}
	fmt.Printf("wrote %s (%s)\n", out, page)
	return nil
}
