package devenv

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/simulator/nmstatesim"
)

// vmNodes are the nodes that run in the VM, with what they offer. Their
// labels say which HostNetworks select them; node-b's nmstate is broken on
// purpose (it claims success and leaves the kernel alone), to show what the
// agent's verification is for.
func vmNodes() []vmNode {
	return []vmNode{
		{NodeInfo{Name: "node-a", Description: "VM (Debian kernel): NICs eth1, eth2; HostNetwork mgmt built here by the nmstate stand-in " +
			"(br-mgmt trunking VLANs 1,100,200 on eth1); SR-IOV PF ens1f0 (4 VFs, 1 in use; HostNetwork business)"},
			map[string]string{LabelMgmt: "true"}},
		{NodeInfo{Name: "node-b", Description: "VM (Debian kernel): NICs eth1, eth2; selected by HostNetwork mgmt, but its nmstate " +
			"stand-in runs in drift mode: it reports success and builds nothing, and the agent says so"},
			map[string]string{LabelMgmt: "true", nmstatesim.LabelDrift: "true"}},
	}
}

type vmNode struct {
	NodeInfo
	labels map[string]string
}

// startVMNodes boots the node VM: its nodes need 802.1Q VLANs and bridge
// VLAN filtering, which the host kernel lacks.
func (env *Env) startVMNodes(ctx context.Context) error {
	start := time.Now()
	for _, node := range vmNodes() {
		if err := env.createNode(ctx, node.Name, node.labels); err != nil {
			return err
		}
	}
	kernel, initramfs, err := env.buildNodeVM()
	if err != nil {
		return err
	}
	console := env.path("node-vm-console.log")
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "1024",
		"-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initramfs,
		"-append", "console=ttyS0 panic=-1 quiet", "-serial", "file:"+console, "-monitor", "none", "-display", "none",
		"-nic", "user,model=e1000"+metricsForwards())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	env.onStop(func() error {
		_ = cmd.Process.Kill()
		<-exited
		return nil
	})
	if err := waitForConsole(console, "VMOP-DEV-NODE-READY node-b", "VMOP-DEV-NODE-FAILED", exited, 3*time.Minute); err != nil {
		return err
	}
	for _, node := range vmNodes() {
		env.Nodes = append(env.Nodes, node.NodeInfo)
	}
	env.logf("node VM up in %v (console %s)", time.Since(start).Round(100*time.Millisecond), console)
	return nil
}

// vmAgentMetricsPort is the metrics port of the VM's first agent (node-a),
// the next ones following it; vmnode binds them in the VM.
const vmAgentMetricsPort = 19470

// metricsForwards forwards each VM agent's metrics port to the same port on
// the host's loopback, for the environment's Prometheus.
func metricsForwards() string {
	var forwards strings.Builder
	for i := range vmNodes() {
		port := vmAgentMetricsPort + i
		fmt.Fprintf(&forwards, ",hostfwd=tcp:127.0.0.1:%d-:%d", port, port)
	}
	return forwards.String()
}

// buildNodeVM builds the static binaries, the VM's kubeconfig and its boot files.
func (env *Env) buildNodeVM() (kernel, initramfs string, err error) {
	root := controlplane.RepoRoot()
	// Each is built in its own module: vmnode in test/ (test/go.mod), the agent in the root.
	binaries := map[string][2]string{"vmnode": {"test", "./devenv/vmnode"}, "vmop-agent": {".", "./cmd/vmop-agent"}}
	for name, built := range binaries {
		build := exec.Command("go", "build", "-ldflags=-s -w", "-o", env.path(name), built[1])
		build.Dir, build.Env = filepath.Join(root, built[0]), append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("build %s: %w: %s", name, err, out)
		}
	}
	if err := env.writeVMKubeconfig(env.path("vm-kubeconfig")); err != nil {
		return "", "", err
	}
	script := exec.Command(filepath.Join(root, "test", "devenv", "nodevm.sh"),
		env.path("vm"), env.path("vmnode"), env.path("vmop-agent"), env.path("vm-kubeconfig"))
	var stdout bytes.Buffer
	script.Stdout, script.Stderr = &stdout, env.log
	if err := os.MkdirAll(env.path("vm"), 0o755); err != nil {
		return "", "", err
	}
	if err := script.Run(); err != nil {
		return "", "", fmt.Errorf("building the node VM: %w", err)
	}
	lines := strings.Fields(stdout.String())
	if len(lines) < 2 {
		return "", "", fmt.Errorf("nodevm.sh printed %q, want the kernel and initramfs paths", stdout.String())
	}
	return lines[len(lines)-2], lines[len(lines)-1], nil
}

// writeVMKubeconfig rewrites the admin kubeconfig for the VM: qemu's user
// network maps the host's loopback to 10.0.2.2, and the apiserver's
// certificate names "localhost", so the VM connects to 10.0.2.2 and checks
// the certificate against "localhost".
func (env *Env) writeVMKubeconfig(path string) error {
	config, err := clientcmd.LoadFromFile(env.ControlPlane.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", env.ControlPlane.Kubeconfig, err)
	}
	for _, cluster := range config.Clusters {
		server, err := url.Parse(cluster.Server)
		if err != nil {
			return fmt.Errorf("server of cluster %s: %w", cluster.Server, err)
		}
		server.Host = "10.0.2.2:" + server.Port()
		cluster.Server = server.String()
		cluster.TLSServerName = "localhost"
	}
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// waitForConsole waits until the VM's serial console shows ready, fails on
// failed, or the VM exits.
func waitForConsole(console, ready, failed string, exited <-chan error, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		content, _ := os.ReadFile(console)
		switch {
		case bytes.Contains(content, []byte(ready)):
			return nil
		case bytes.Contains(content, []byte(failed)):
			return fmt.Errorf("node VM: %s (console %s)", lastLine(content, failed), console)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("node VM exited before its nodes were ready: %w (console %s)", err, console)
		case <-deadline:
			return fmt.Errorf("node VM not ready after %v (console %s)", timeout, console)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lastLine(content []byte, containing string) string {
	for _, line := range strings.Split(string(content), "\n") {
		if strings.Contains(line, containing) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
