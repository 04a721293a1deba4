package devenv

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
	"github.com/jianfenliu/vmoperator/test/simulator/nmstatesim"
)

// netnsPrefix names everything the environment creates in the kernel, so a
// crashed run's leftovers can be found and removed.
const netnsPrefix = "vmop-dev-"

// netnsNode is a node whose links live in a network namespace of this host.
type netnsNode struct {
	name        string
	description string
	labels      map[string]string
	// links are `ip` commands (without "ip -n NS") that build the node's links.
	links [][]string
}

// hostNodes are the nodes that need only what the host kernel offers.
func hostNodes() []netnsNode {
	return []netnsNode{{
		name:        "node-c",
		description: "network namespace of this host: existing bridge br-lan on uplink eth1 (HostNetwork lan), this host's /dev/kvm if any",
		labels:      map[string]string{LabelLAN: "true"},
		links: [][]string{
			{"link", "add", "br-lan", "type", "bridge"},
			{"link", "set", "eth1", "master", "br-lan"},
			{"link", "set", "br-lan", "up"},
		},
	}}
}

// cleanLeftovers removes namespaces and links a crashed run left behind.
func cleanLeftovers() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.HasPrefix(name, netnsPrefix) {
			_ = ip("netns", "del", name)
		}
	}
	// A host end outlives its namespace while a killed run's processes
	// still held it; left there, it would block the next run's veth.
	links, _ := net.Interfaces()
	for _, link := range links {
		if strings.HasPrefix(link.Name, hostLinkPrefix) {
			_ = ip("link", "del", link.Name)
		}
	}
}

// hostLinkPrefix names the host ends of the host nodes' uplinks.
const hostLinkPrefix = "vmopdev"

func (env *Env) startNodes(ctx context.Context, agentBinary string) error {
	if _, err := os.Stat(agentBinary); err != nil {
		return fmt.Errorf("vmop-agent binary: %w (make dev builds it)", err)
	}
	cleanLeftovers()
	if err := env.startVMNodes(ctx); err != nil {
		return err
	}
	var standIn []nmstatesim.Node
	for i, node := range hostNodes() {
		links, err := env.startNetnsNode(ctx, node, agentBinary, i)
		if err != nil {
			return fmt.Errorf("node %s: %w", node.name, err)
		}
		standIn = append(standIn, nmstatesim.Node{Name: node.name, Links: links})
	}
	return env.startStandIn(ctx, standIn)
}

// startStandIn runs the nmstate stand-in for the host's nodes, each
// applying policies in its own network namespace (the node VM runs its own).
func (env *Env) startStandIn(ctx context.Context, nodes []nmstatesim.Node) error {
	mgr, err := ctrl.NewManager(env.ControlPlane.Config, ctrl.Options{Scheme: controlplane.NewScheme(),
		Metrics: metricsserver.Options{BindAddress: "0"}, Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		return fmt.Errorf("nmstate stand-in manager: %w", err)
	}
	if err := nmstatesim.Setup(mgr, nodes...); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	env.onStop(func() error { cancel(); <-done; return nil })
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			env.logf("nmstate stand-in stopped: %v", err)
		}
	}()
	return nil
}

// createNode registers a Node object, as a kubelet would, with the labels
// the environment's admin gave it.
func (env *Env) createNode(ctx context.Context, name string, extra map[string]string) error {
	labels := map[string]string{"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", corev1.LabelHostname: name}
	maps.Copy(labels, extra)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.ControlPlane.Client.Create(ctx, node); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// startNetnsNode builds a host node's namespace and links, registers it and
// starts its agent; it returns a netlink handle in the namespace.
func (env *Env) startNetnsNode(ctx context.Context, node netnsNode, agentBinary string, index int) (*netlink.Handle, error) {
	namespace := netnsPrefix + node.name
	hostEnd := fmt.Sprintf("%s%d", hostLinkPrefix, index)
	steps := [][]string{
		{"netns", "add", namespace},
		{"-n", namespace, "link", "set", "lo", "up"},
		// The node's uplink: one end of a veth pair, the other end on the host,
		// so it has carrier like a cabled NIC.
		{"link", "add", hostEnd, "type", "veth", "peer", "name", "eth1", "netns", namespace},
		{"link", "set", hostEnd, "up"},
		{"-n", namespace, "link", "set", "eth1", "up"},
	}
	env.onStop(func() error {
		_ = ip("link", "del", hostEnd)
		return ip("netns", "del", namespace)
	})
	if env.wires == nil {
		env.wires = map[string]string{}
	}
	env.wires[node.name] = hostEnd
	for _, step := range steps {
		if err := ip(step...); err != nil {
			return nil, err
		}
	}
	for _, link := range node.links {
		if err := ip(append([]string{"-n", namespace}, link...)...); err != nil {
			return nil, err
		}
	}
	if err := env.createNode(ctx, node.name, node.labels); err != nil {
		return nil, err
	}
	env.Nodes = append(env.Nodes, NodeInfo{Name: node.name, Description: node.description})
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", namespace, err)
	}
	handle, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	ns.Close()
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", namespace, err)
	}
	env.onStop(func() error { handle.Close(); return nil })
	return handle, env.startAgent(node.name, agentBinary, index, "--netns", "/run/netns/"+namespace, "--extra-uplinks", "eth1")
}

// agentProcess is one running vmop-agent.
type agentProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startAgent runs vmop-agent for one node, against the environment's apiserver.
func (env *Env) startAgent(node, agentBinary string, index int, extra ...string) error {
	sysfs := env.path("sysfs-" + node) // no SR-IOV hardware on this node
	if err := os.MkdirAll(filepath.Join(sysfs, "class", "net"), 0o755); err != nil {
		return err
	}
	// KVM is this host's: the agent reads it from the kvm misc device and
	// the vendor modules' parameters.
	for _, dir := range []string{"class/misc", "module"} {
		if err := os.Symlink(filepath.Join("/sys", dir), filepath.Join(sysfs, dir)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	args := append([]string{
		"--node-name", node,
		"--kubeconfig", env.ControlPlane.Kubeconfig,
		"--lease-namespace", LeaseNamespace,
		"--lease-duration", AgentLeaseDuration.String(), "--lease-renew-interval", AgentRenewInterval.String(),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", hostAgentMetricsPort+index),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", 19480+index),
		"--sysfs-root", sysfs,
	}, extra...)
	if env.agentArgs == nil {
		env.agentArgs = map[string][]string{}
		env.agents = map[string]*agentProcess{}
	}
	env.agentArgs[node] = append([]string{agentBinary}, args...)
	env.onStop(func() error { env.StopAgent(node); return nil })
	if err := env.RestartAgent(node); err != nil {
		return err
	}
	env.logf("node %s: vmop-agent running (log %s, metrics https://127.0.0.1:%d/metrics)", node, env.path("agent-"+node+".log"), hostAgentMetricsPort+index)
	return nil
}

// hostAgentMetricsPort is the metrics port of the first host node's agent,
// the next ones following it.
const hostAgentMetricsPort = 19460

// AgentLeaseDuration is the Lease the host nodes' agents promise: after an
// agent stops, its node leaves new placements this long after its last renewal.
const AgentLeaseDuration = 20 * time.Second

// AgentRenewInterval is how often the host nodes' agents renew their Lease.
const AgentRenewInterval = 5 * time.Second

// StopAgent stops a host node's agent (SIGTERM, then SIGKILL after 10 s),
// as a crashed or evicted agent pod would.
func (env *Env) StopAgent(node string) {
	agent := env.agents[node]
	if agent == nil {
		return
	}
	delete(env.agents, node)
	_ = agent.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-agent.exited:
	case <-time.After(10 * time.Second):
		_ = agent.cmd.Process.Kill()
		<-agent.exited
	}
}

// KillAgent kills a host node's agent at once (SIGKILL): no goodbye.
func (env *Env) KillAgent(node string) {
	if agent := env.agents[node]; agent != nil {
		_ = agent.cmd.Process.Kill()
		<-agent.exited
		delete(env.agents, node)
	}
}

// RestartAgent starts a host node's agent again (or the first time).
func (env *Env) RestartAgent(node string) error {
	args, ok := env.agentArgs[node]
	if !ok {
		return fmt.Errorf("no agent for node %s (only host nodes' agents are managed here)", node)
	}
	env.StopAgent(node)
	logFile, err := os.OpenFile(env.path("agent-"+node+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("restart the agent of %s: %w", node, err)
	}
	agent := &agentProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(agent.exited) }()
	env.agents[node] = agent
	return nil
}

// SendFrames sends count broadcast frames tagged with VLAN vid (untagged
// for 0) into a host node's uplink eth1, from the far end of its cable, as
// a switch port would.
func (env *Env) SendFrames(node string, vid, count int) error {
	wire, ok := env.wires[node]
	if !ok {
		return fmt.Errorf("%s is not a host node", node)
	}
	link, err := netlink.LinkByName(wire)
	if err != nil {
		return fmt.Errorf("link %s: %w", wire, err)
	}
	socket, err := netnstest.OpenSendSocket(link.Attrs().Index)
	if err != nil {
		return err
	}
	defer socket.Close()
	frame := netnstest.Frame(vid, 128)
	for range count {
		if err := socket.Send(frame); err != nil {
			return fmt.Errorf("sending on %s: %w", wire, err)
		}
	}
	return nil
}

// SetLink sets a link of a host node up or down, as an operator or a
// failing cable would.
func (env *Env) SetLink(node, link string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip("-n", netnsPrefix+node, "link", "set", link, state)
}
