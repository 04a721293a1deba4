// Command vmop-controller reconciles VirtualMachineProfiles into network
// attachments, host-network policies, disks, cloud-init and KubeVirt VMs, and
// keeps their status true. It runs leader-elected; only the leader reconciles.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/jianfenliu/vmoperator/controller/manager"
)

func main() {
	options := manager.Options{}
	flag.StringVar(&options.MetricsAddress, "metrics-bind-address", ":8080", "address of the /metrics endpoint; 0 disables it")
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
	zapOptions := zap.Options{}
	zapOptions.BindFlags(flag.CommandLine)
	flag.Parse()
	options.Logger = zap.New(zap.UseFlagOptions(&zapOptions))
	if err := manager.Run(options); err != nil {
		fmt.Fprintln(os.Stderr, "vmop-controller:", err)
		os.Exit(1)
	}
}
