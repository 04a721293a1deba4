package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/kubectlplugin"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// runPlugin runs kubectl vmprofile against the integration cluster.
func runPlugin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := kubectlplugin.Env{Stdout: &stdout, Stderr: &stderr, LookPath: exec.LookPath, Now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := kubectlplugin.Main(ctx, append([]string{args[0], "--kubeconfig", cluster.Kubeconfig}, args[1:]...), env)
	return code, stdout.String() + stderr.String()
}

// TestPluginAgreesWithTheController: with the controller running as make
// run and make dev run it (in-process, its default flags), kubectl
// vmprofile why on the request's test VM counts the eligible nodes the
// controller's status counts and names the VM's node eligible; doctor
// finds every seeded node's agent reporting, the declared HostNetworks
// Ready and our CRDs current.
func TestPluginAgreesWithTheController(t *testing.T) {
	ns := newNamespace(t)
	create(t, observe.Sample(t, "vm_v1alpha1_virtualmachineprofile.yaml", ns))
	waitForPhase(t, ns, "test-vm", vmv1alpha1.PhaseRunning)
	observe.Eventually(t, 30*time.Second, "why agrees with status.placement", func() (bool, string) {
		p := getProfile(t, ns, "test-vm")
		code, out := runPlugin(t, "why", "test-vm", "-n", ns)
		if code != kubectlplugin.ExitOK || p.Status.Placement == nil {
			return false, fmt.Sprintf("exit %d, status %s:\n%s", code, observe.Describe(p), out)
		}
		total := p.Status.Placement.EligibleNodes + p.Status.Placement.ExcludedNodes
		want := []string{
			fmt.Sprintf("VirtualMachineProfile %s/test-vm: VM test-vm-vm (phase Running, on node %s)\n", ns, p.Status.NodeName),
			"No controller Deployment found: judged with the controller's defaults: KVM required\n",
			fmt.Sprintf("%d of %d node(s) can host the VM.\n", p.Status.Placement.EligibleNodes, total),
			"  " + p.Status.NodeName + ": eligible\n",
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false, fmt.Sprintf("lacks %q:\n%s", w, out)
			}
		}
		return !strings.Contains(out, "Note:"), out
	})

	_, out := runPlugin(t, "doctor")
	want := []string{"  ok    lan: Ready\n", "  ok    mgmt: Ready\n", "  ok    virtualmachineprofiles.vm.example.com current\n",
		"  ok    KubeVirt installed", "  ok    Multus installed"}
	for _, node := range nodeNames {
		want = append(want, "  ok    "+node+": agent Lease renewed ")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("doctor lacks %q:\n%s", w, out)
		}
	}
}
