// Command vmop-controller reconciles VirtualMachineProfiles into network
// attachments, host-network policies, disks, cloud-init and KubeVirt VMs, and
// keeps their status true. It runs leader-elected; only the leader reconciles.
//
// Two subcommands serve the Helm chart's hooks: `vmop-controller apply-crds`
// (before install and upgrade) and `vmop-controller uninstall-cleanup`
// (after uninstall).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/version"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == commandApplyCRDs || os.Args[1] == commandCleanup) {
		os.Exit(runHook(os.Args[1], os.Args[2:]))
	}
	// The heap is mostly the informer caches, which only grow with the
	// cluster; collecting at 50 % growth instead of Go's 100 % took RSS
	// per 1,000 profiles from 52 to 41.5 MiB in make bench, for 1.3 s more
	// CPU in a 1,000-profile burst. GOGC, when set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	options := manager.Options{}
	flag.StringVar(&options.MetricsAddress, "metrics-bind-address", ":8443", "address of the /metrics endpoint; 0 disables it (the chart binds the pod IP)")
	metricsSecure := flag.Bool("metrics-secure", true,
		"serve /metrics over HTTPS to bearer tokens the apiserver authorizes for GET /metrics; false serves plain HTTP to anyone (make run on loopback only)")
	flag.StringVar(&options.MetricsCertDir, "metrics-cert-path", "",
		"directory holding tls.crt and tls.key of /metrics, reloaded when they change; empty means a self-signed certificate")
	flag.StringVar(&options.ProbeAddress, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	flag.BoolVar(&options.LeaderElection, "leader-elect", true, "elect a leader so that only one replica reconciles")
	flag.StringVar(&options.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	flag.StringVar(&options.DefaultSRIOVResource, "default-sriov-resource", "intel.com/sriov_netdevice",
		"device-plugin resource of SR-IOV networks that do not set sriov.resourceName")
	flag.StringVar(&options.LeaseNamespace, "agent-lease-namespace", manager.DefaultLeaseNamespace, "namespace of the vmop-agents' per-node Leases")
	flag.DurationVar(&options.LabelGrace, "capability-label-grace", 2*time.Minute,
		"how long a node keeps a capability label after the capability disappeared (running VMs are never evicted)")
	flag.BoolVar(&options.AllowEmulation, "allow-emulation", false,
		"place VMs on nodes without usable /dev/kvm, for KubeVirt configured with useEmulation: true")
	flag.BoolVar(&options.AllowUndeclaredHostNetworks, "allow-undeclared-host-networks", false,
		"let profiles attach to host bridges and links no HostNetwork declares (single-tenant clusters only)")
	sharedNADs := flag.String("shared-nad-namespaces", "",
		"comma-separated namespaces whose NetworkAttachmentDefinitions profiles of other namespaces may name in nadName")
	flag.DurationVar(&options.HostNetworkRevertTimeout, "host-network-revert-timeout", 5*time.Minute,
		"how long deleting a managed HostNetwork waits for nmstate to revert the host side before deleting its policies anyway")
	flag.DurationVar(&options.LeaderElectionTiming.LeaseDuration, "leader-elect-lease-duration", 15*time.Second,
		"how long a leader's Lease lasts: a replica that died is replaced after at most this long")
	flag.DurationVar(&options.LeaderElectionTiming.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second,
		"how long the leader tries to renew its Lease before it stops reconciling (shorter than the lease duration)")
	flag.DurationVar(&options.LeaderElectionTiming.RetryPeriod, "leader-elect-retry-period", 2*time.Second,
		"how often replicas try to take or renew the Lease")
	qps := flag.Float64("kube-api-qps", 200, "requests per second the controller may send to the apiserver (sustained)")
	flag.IntVar(&options.ClientBurst, "kube-api-burst", 400, "requests the controller may send to the apiserver in a burst above --kube-api-qps")
	flag.IntVar(&options.ProfileWorkers, "profile-workers", 16, "how many profiles reconcile at once")
	flag.DurationVar(&options.StatusInterval, "status-interval", time.Second,
		"least time between two status writes of one profile that only record progress (problems are written at once)")
	flag.DurationVar(&options.DependencyInterval, "dependency-interval", manager.DefaultDependencyInterval,
		"how often to check whether KubeVirt, CDI, Multus or nmstate was installed or removed; on a change the controller exits cleanly to be restarted with the new watches")
	flag.DurationVar(&options.CapabilityWakeInterval, "capability-wake-interval", 5*time.Second,
		"least time between two re-queues of profiles caused by one node's capability changes; later changes are delivered at its end (0: every change at once)")
	printVersion := flag.Bool("version", false, "print the version and exit")
	zapOptions := zap.Options{}
	zapOptions.BindFlags(flag.CommandLine)
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String("vmop-controller"))
		return
	}
	options.SharedNADNamespaces = splitList(*sharedNADs)
	options.InsecureMetrics = !*metricsSecure
	options.ClientQPS = float32(*qps)
	options.Logger = zap.New(zap.UseFlagOptions(&zapOptions))
	options.Logger.Info("starting", "version", version.String("vmop-controller"))
	if err := manager.Run(options); err != nil {
		fmt.Fprintln(os.Stderr, "vmop-controller:", err)
		os.Exit(1)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(value string) []string {
	var out []string
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
