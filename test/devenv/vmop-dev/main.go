// Command vmop-dev brings up the local development environment (see package
// devenv) and keeps it running until Ctrl-C, which tears it all down.
// `make dev` builds and runs it; it needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/devenv"
)

func main() {
	agent := flag.String("agent", filepath.Join(controlplane.BinDir(), "vmop-agent"), "vmop-agent binary to run on each node")
	verbose := flag.Bool("v", false, "show vmop-controller's log")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Errors only unless -v: the environment's own lines say what happens.
	level := zapcore.ErrorLevel
	if *verbose {
		level = zapcore.InfoLevel
	}
	logger := zap.New(zap.WriteTo(os.Stderr), zap.Level(level))
	start := time.Now()
	env, err := devenv.Start(ctx, devenv.Options{AgentBinary: *agent, Log: os.Stderr, ControllerLogger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmop-dev:", err)
		os.Exit(1)
	}
	fmt.Printf("\nvmoperator development environment is up (%v).\n\n", time.Since(start).Round(100*time.Millisecond))
	for _, node := range env.Nodes {
		fmt.Printf("  %-8s %s\n", node.Name, node.Description)
	}
	if env.AllowEmulation {
		fmt.Println("\n  The controller runs with --allow-emulation (KubeVirt's useEmulation): node-a and node-b are\n" +
			"  emulated and never have /dev/kvm; node-c reports this host's /dev/kvm where it has one.")
	}
	fmt.Printf(`
Try:
  export KUBECONFIG=%s
  kubectl get hostnetworks          # what the admin declared; mgmt is verified on node-a only
  kubectl get nodecap
  kubectl apply -f config/samples/   # the request's test VM and the HostNetwork it needs
  kubectl get vmprofile -w          # Running on node-a
  kubectl describe vmprofile test-vm   # why not node-b (its nmstate drifts) or node-c
  kubectl get nodes --show-labels
  %s/alerts                 # Prometheus: the alerts of metrics/alerts.yaml on live metrics

Ctrl-C tears everything down.
`, env.ControlPlane.Kubeconfig, env.PrometheusURL)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nvmop-dev: tearing down")
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "vmop-dev: teardown:", err)
		os.Exit(1)
	}
}
