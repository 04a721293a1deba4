// Command vmnode runs inside the development environment's VM, which boots
// Debian's stock kernel because the host kernel lacks 802.1Q VLANs and bridge
// VLAN filtering. For each node it builds the node's NICs in a network
// namespace of its own, runs the nmstate stand-in that applies the
// HostNetworks' policies to those namespaces, and runs that node's
// vmop-agent; all reach the host's apiserver through qemu's user network
// (10.0.2.2). Development environment only; never shipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/go-logr/logr"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/jianfenliu/vmoperator/test/simulator/nmstatesim"
)

// node is one node's kernel setup: NICs eth1 and eth2 (dummy links: they
// have carrier like cabled NICs) and optionally a fake SR-IOV PF in the
// agent's sysfs tree. What runs on them (br-mgmt) is built by the nmstate
// stand-in from the HostNetworks' policies, as nmstate would.
type node struct {
	name  string
	sriov bool
}

func main() {
	// A flag set of its own: controller-runtime registers --kubeconfig on the global one.
	flags := flag.NewFlagSet("vmnode", flag.ExitOnError)
	agent := flags.String("agent", "/vmop-agent", "vmop-agent binary")
	kubeconfig := flags.String("kubeconfig", "/kubeconfig", "kubeconfig reaching the host's apiserver")
	_ = flags.Parse(os.Args[1:])
	nodes := []node{{name: "node-a", sriov: true}, {name: "node-b"}}
	var standIn []nmstatesim.Node
	for _, n := range nodes {
		if err := build(n); err != nil {
			fail("node %s: %v", n.name, err)
		}
		sysfs := "/tmp/sysfs-" + n.name
		if err := fakeSysfs(sysfs, n.sriov); err != nil {
			fail("node %s: sysfs: %v", n.name, err)
		}
		links, err := linksOf(n.name)
		if err != nil {
			fail("node %s: %v", n.name, err)
		}
		standIn = append(standIn, nmstatesim.Node{Name: n.name, Links: links, SysfsRoot: sysfs})
	}
	if err := runStandIn(*kubeconfig, standIn); err != nil {
		fail("nmstate stand-in: %v", err)
	}
	var agents []*exec.Cmd
	for i, n := range nodes {
		cmd := exec.Command(*agent, "--node-name", n.name, "--kubeconfig", *kubeconfig,
			"--netns", "/run/netns/"+n.name, "--lease-namespace", "vmop-system",
			"--lease-duration", "30s", "--lease-renew-interval", "10s",
			// Ports 19470, 19471: qemu forwards them to the host's loopback,
			// where the environment's Prometheus scrapes them (devenv.vmAgentMetricsPort)
			// over HTTPS with its token, which the agent has the apiserver review.
			"--metrics-bind-address", fmt.Sprintf(":%d", 19470+i), "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", 8081+i),
			"--sysfs-root", "/tmp/sysfs-"+n.name, "--extra-uplinks", "eth1,eth2")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		if err := cmd.Start(); err != nil {
			fail("node %s: agent: %v", n.name, err)
		}
		fmt.Printf("VMOP-DEV-NODE-READY %s\n", n.name)
		agents = append(agents, cmd)
	}
	for _, cmd := range agents {
		_ = cmd.Wait()
	}
}

// linksOf opens a netlink handle in a node's namespace.
func linksOf(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return h, nil
}

// runStandIn runs the nmstate stand-in for the VM's nodes in the background.
func runStandIn(kubeconfig string, nodes []nmstatesim.Node) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	scheme := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{clientgoscheme.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Logger: logr.FromSlogHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return fmt.Errorf("nmstate stand-in manager: %w", err)
	}
	if err := nmstatesim.Setup(mgr, nodes...); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Printf("nmstate stand-in stopped: %v\n", err)
		}
	}()
	return nil
}

func fail(format string, args ...any) {
	fmt.Printf("VMOP-DEV-NODE-FAILED "+format+"\n", args...)
	os.Exit(1)
}

// build creates the node's namespace and links.
func build(n node) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	host, err := netns.Get()
	if err != nil {
		return fmt.Errorf("node %s: current network namespace: %w", n.name, err)
	}
	defer host.Close()
	ns, err := netns.NewNamed(n.name) // also switches this thread into it
	if err != nil {
		return fmt.Errorf("node %s: new network namespace: %w", n.name, err)
	}
	defer ns.Close()
	defer netns.Set(host) //nolint:errcheck // best effort; the thread is unlocked right after
	// Route only: the VM's kernel has no xfrm or netfilter netlink loaded.
	handle, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("node %s: netlink handle: %w", n.name, err)
	}
	defer handle.Close()
	steps := []struct {
		what string
		do   func() error
	}{
		{"set lo up", func() error { return up(handle, "lo") }},
		{"add NIC eth1", func() error { return handle.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}}) }},
		{"add NIC eth2", func() error { return handle.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth2"}}) }},
		{"set eth1 up", func() error { return up(handle, "eth1") }},
		{"set eth2 up", func() error { return up(handle, "eth2") }},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	return nil
}

func up(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// fakeSysfs writes the part of sysfs the agent's SR-IOV probe reads: no
// kernel here has SR-IOV hardware. With sriov, PF ens1f0 has 8 VFs possible,
// 4 created, one of them bound to vfio-pci (in use).
func fakeSysfs(root string, sriov bool) error {
	if err := os.MkdirAll(filepath.Join(root, "class", "net"), 0o755); err != nil || !sriov {
		return err
	}
	pci := filepath.Join(root, "devices", "pci0000:00")
	pf := filepath.Join(pci, "0000:3b:00.0")
	files := map[string]string{
		filepath.Join(pf, "sriov_totalvfs"):                            "8",
		filepath.Join(pf, "sriov_numvfs"):                              "4",
		filepath.Join(root, "class", "net", "ens1f0.dir", "operstate"): "up",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
			return err
		}
	}
	drivers := filepath.Join(root, "bus", "pci", "drivers")
	links := map[string]string{filepath.Join(pf, "driver"): filepath.Join(drivers, "ixgbe")}
	for vf := 0; vf < 4; vf++ {
		dir := filepath.Join(pci, fmt.Sprintf("0000:3b:10.%d", vf))
		driver := "iavf"
		if vf == 0 {
			driver = "vfio-pci" // handed to a VM
		} else if err := os.MkdirAll(filepath.Join(dir, "net", fmt.Sprintf("ens1f0v%d", vf)), 0o755); err != nil {
			return err
		}
		links[filepath.Join(pf, fmt.Sprintf("virtfn%d", vf))] = dir
		links[filepath.Join(dir, "driver")] = filepath.Join(drivers, driver)
	}
	for _, d := range []string{"ixgbe", "iavf", "vfio-pci"} {
		if err := os.MkdirAll(filepath.Join(drivers, d), 0o755); err != nil {
			return err
		}
	}
	netdev := filepath.Join(root, "class", "net", "ens1f0")
	if err := os.Rename(netdev+".dir", netdev); err != nil {
		return err
	}
	links[filepath.Join(netdev, "device")] = pf
	for link, target := range links {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, link); err != nil && !strings.Contains(err.Error(), "exists") {
			return err
		}
	}
	return nil
}
