// Package daemon wires vmop-agent, as controller/manager wires
// vmop-controller: it parses the flags and runs the agent, which probes its
// node (KVM, bridges, VLANs, bonds, OVS, SR-IOV), verifies the nmstate
// policies selecting it, publishes the node's NodeCapability when it
// changes, renews the node's Lease and serves /metrics, /healthz and
// /readyz. cmd/vmop-agent only calls Run; the work is in agent/.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/jianfenliu/vmoperator/version"
)

// options are the agent's flags.
type options struct {
	nodeName       string
	kubeconfig     string
	leaseNamespace string
	leaseDuration  time.Duration
	leaseRenew     time.Duration
	metricsAddr    string
	metricsSecure  bool
	metricsCertDir string
	healthAddr     string
	kvmDevice      string
	sysfsRoot      string
	procRoot       string
	netnsPath      string
	uplinks        string
	debounce       time.Duration
	minInterval    time.Duration
	resync         time.Duration
	verifyPolicies bool
	vlanCounters   bool
	vlanMaxPorts   int
	printVersion   bool
	logLevel       slog.Level
	apiTimeout     time.Duration
	healthMaxRound time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("vmop-agent", flag.ContinueOnError)
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME, from the downward API)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file; empty means in-cluster")
	fs.StringVar(&o.leaseNamespace, "lease-namespace", envOr("POD_NAMESPACE", "vmop-system"), "namespace of the per-node Leases")
	fs.DurationVar(&o.leaseDuration, "lease-duration", 40*time.Second, "how long a Lease promises the agent is alive")
	fs.DurationVar(&o.leaseRenew, "lease-renew-interval", 10*time.Second, "how often the Lease is renewed")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":9464", "address of /metrics; empty disables it (the chart binds the node's IP, $POD_IP of the host-network pod)")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"serve /metrics over HTTPS to bearer tokens the apiserver authorizes for GET /metrics; false serves plain HTTP to anyone (local development only)")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-path", "", "directory holding tls.crt and tls.key of /metrics, reloaded when they change; empty means a self-signed certificate")
	fs.StringVar(&o.healthAddr, "health-probe-bind-address", "127.0.0.1:8081", "address of /healthz and /readyz (loopback: the agent shares the node's network, and the kubelet probes it there)")
	fs.StringVar(&o.kvmDevice, "kvm-device", "/dev/kvm", "KVM device node to ask the API version of, where it opens; KVM availability comes from sysfs (class/misc/kvm), so empty never opens a device (the chart's agent holds none)")
	fs.StringVar(&o.sysfsRoot, "sysfs-root", "/sys", "sysfs mount to read SR-IOV, KVM module parameters and link speeds from")
	fs.StringVar(&o.procRoot, "procfs-root", "/proc", "procfs mount to read cpuinfo from")
	fs.StringVar(&o.netnsPath, "netns", "", "network namespace to probe (a /proc/PID/ns/net or /run/netns path); empty means the agent's own")
	fs.StringVar(&o.uplinks, "extra-uplinks", "", "comma-separated links to report as uplinks besides NICs and bonds")
	fs.DurationVar(&o.debounce, "debounce", 500*time.Millisecond, "wait after the first kernel event of a burst")
	fs.DurationVar(&o.minInterval, "min-write-interval", 2*time.Second, "least time between a write and the next event round")
	fs.DurationVar(&o.resync, "resync", 5*time.Minute, "base period of full re-probes (jittered by up to 20%)")
	fs.BoolVar(&o.verifyPolicies, "verify-policies", true, "verify nmstate policies selecting this node (off automatically when nmstate's CRDs are missing)")
	fs.BoolVar(&o.vlanCounters, "vlan-counters", true, "count traffic per VLAN on uplinks and bridge ports with eBPF (needs CAP_BPF and CAP_NET_ADMIN; without them the agent runs on and says so)")
	fs.IntVar(&o.vlanMaxPorts, "vlan-counter-max-ports", 64, "most ports the per-VLAN counters attach to (224 KiB of kernel memory each, charged to the agent): PFs, bonds, uplinks other than SR-IOV VFs, then bridge ports, by name; past it VLANCountersReady says PortLimitReached")
	fs.DurationVar(&o.apiTimeout, "api-timeout", 30*time.Second, "bound on each API request of the NodeCapability publisher and the Lease (the policy watch is not bounded)")
	fs.DurationVar(&o.healthMaxRound, "health-max-round", 2*time.Minute, "/healthz fails while one probe round runs longer than this (or the loops stall otherwise)")
	fs.BoolVar(&o.printVersion, "version", false, "print the version and exit")
	o.logLevel = slog.LevelInfo
	fs.Func("log-level", "least level logged: debug, info, warn or error (default info); debug adds each write and round", func(s string) error {
		var err error
		o.logLevel, err = parseLogLevel(s)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("parse the flags: %w", err)
	}
	if o.printVersion {
		return o, nil
	}
	if o.nodeName == "" {
		return o, errors.New("--node-name or $NODE_NAME is required")
	}
	if o.vlanMaxPorts <= 0 {
		return o, fmt.Errorf("--vlan-counter-max-ports must be positive, not %d", o.vlanMaxPorts)
	}
	if o.apiTimeout <= 0 || o.healthMaxRound <= 0 {
		return o, errors.New("--api-timeout and --health-max-round must be positive")
	}
	if o.leaseRenew >= o.leaseDuration {
		return o, fmt.Errorf("--lease-renew-interval (%v) must be shorter than --lease-duration (%v)", o.leaseRenew, o.leaseDuration)
	}
	return o, nil
}

// parseLogLevel accepts exactly the four names the flag documents, not
// slog's offsets such as "info+2", so that a typo fails at start-up.
func parseLogLevel(name string) (slog.Level, error) {
	levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
	level, ok := levels[name]
	if !ok {
		return 0, fmt.Errorf("unknown log level %q: want debug, info, warn or error", name)
	}
	return level, nil
}

// newLogger logs JSON to w from level up. logr's V(1) maps to slog level
// -1, so debug shows it and info does not.
func newLogger(w io.Writer, level slog.Level) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (o options) extraUplinks() []string {
	var out []string
	for _, name := range strings.Split(o.uplinks, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// Run runs vmop-agent with the given arguments and returns the exit code: 2 for bad flags, 1 when the agent cannot start,
// 0 after a graceful shutdown on SIGTERM or SIGINT.
func Run(args []string) int {
	opts, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmop-agent:", err)
		return 2
	}
	if opts.printVersion {
		fmt.Println(version.String("vmop-agent"))
		return 0
	}
	log := newLogger(os.Stderr, opts.logLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, opts, log); err != nil {
		log.Error(err, "vmop-agent stopped")
		return 1
	}
	log.Info("vmop-agent shut down")
	return 0
}
