//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestPluginOnTheDevEnvironment: on the environment of make dev, with the
// request's test VM applied from config/samples, `kubectl vmprofile why
// test-vm` (the plugin built from cmd/kubectl-vmprofile and found by kubectl
// on PATH, as Krew installs it) says node-a hosts it and why each other node
// does not, with a fix, and agrees with the controller's count; `kubectl
// vmprofile doctor` finds every node's agent fresh, HostNetwork lan Ready,
// mgmt not verified on node-b (drifted on purpose), and our CRDs current.
func TestPluginOnTheDevEnvironment(t *testing.T) {
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "kubectl-vmprofile"), "./cmd/kubectl-vmprofile")
	build.Dir = controlplane.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl-vmprofile: %v\n%s", err, out)
	}
	ns := newNamespace(t)
	kubeconfig := namespacedKubeconfig(t, ns)
	create(t, observe.Sample(t, "vm_v1alpha1_virtualmachineprofile.yaml", ns))
	p := waitForReady(t, ns, "test-vm")
	onPath := "PATH=" + plugins + ":$PATH "

	var why string
	observe.Eventually(t, 30*time.Second, "why names node-a eligible and agrees with the status", func() (bool, string) {
		p = get(t, ns, "test-vm")
		out, err := shellIn(t, kubeconfig, onPath+"kubectl vmprofile why test-vm")
		why = out
		if err != nil || p.Status.Placement == nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		placement := p.Status.Placement
		want := []string{
			fmt.Sprintf("VirtualMachineProfile %s/test-vm: VM test-vm-vm (phase Running, on node node-a)\n", ns),
			fmt.Sprintf("%d of %d node(s) can host the VM.\n", placement.EligibleNodes, placement.EligibleNodes+placement.ExcludedNodes),
			"  node-a: eligible\n",
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false, fmt.Sprintf("lacks %q:\n%s", w, out)
			}
		}
		return !strings.Contains(out, "Note:"), out
	})
	for _, node := range []string{"node-b", "node-c"} {
		line := lineStarting(why, "  "+node+": excluded: ")
		if line == "" || !strings.Contains(why, line+"\n      fix: ") {
			t.Errorf("why gives %s no reason and fix:\n%s", node, why)
		}
	}
	if p.Status.NodeName != "node-a" {
		t.Errorf("test-vm on %q: %s", p.Status.NodeName, observe.Describe(p))
	}

	// HostNetworks declared as the environment came up are judged again
	// once every agent reported (at most one wake per node per
	// --capability-wake-interval), so doctor may need a moment.
	// The environment keeps node-b's br-mgmt drifted on purpose (nmstate
	// says Available, the bridge is missing): doctor must say so.
	want := []string{"  ok    lan: Ready\n", "  FAIL  mgmt: not Ready (NodesNotVerified): verified on 1 of 2 node(s); node-b: ", "  ok    virtualmachineprofiles.vm.example.com current\n",
		"  ok    hostnetworks.vm.example.com current\n", "  ok    KubeVirt installed"}
	for _, node := range []string{"node-a", "node-b", "node-c"} {
		want = append(want, "  ok    "+node+": agent Lease renewed ")
	}
	observe.Eventually(t, time.Minute, "doctor judges the agents, HostNetworks and CRDs", func() (bool, string) {
		doctor, _ := shellIn(t, kubeconfig, onPath+"kubectl vmprofile doctor")
		for _, w := range want {
			if !strings.Contains(doctor, w) {
				return false, fmt.Sprintf("lacks %q:\n%s", w, doctor)
			}
		}
		return true, doctor
	})
}

// lineStarting is the first line of out that starts with prefix, or "".
func lineStarting(out, prefix string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
