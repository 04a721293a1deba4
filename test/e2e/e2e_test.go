//go:build e2e

// Package e2e runs the placement scenarios on the development environment
// of `make dev` itself (package devenv): real agents probing their own
// kernel links — two nodes in a VM booting Debian's stock kernel (VLAN
// filtering), one in a network namespace of this host — the real control
// plane, the simulator, and vmop-controller. It needs root, like make dev.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers/written"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/devenv"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// env is the one environment every scenario runs on.
var env *devenv.Env

// consumersOfSuite are KubeVirt's own VM validation (one process for the
// suite) and the CNI plugins.
var consumersOfSuite written.Consumers

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	var stopConsumers func()
	if consumersOfSuite, stopConsumers, err = written.Start(); err != nil {
		return 0, err
	}
	defer stopConsumers()
	dir, err := os.MkdirTemp("", "vmop-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	agent := filepath.Join(dir, "vmop-agent")
	build := exec.Command("go", "build", "-o", agent, "./cmd/vmop-agent")
	build.Dir = controlplane.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build vmop-agent: %w: %s", err, out)
	}
	start := time.Now()
	env, err = devenv.Start(context.Background(), devenv.Options{AgentBinary: agent, Log: os.Stderr, ControllerLogger: observe.ControllerLogger()})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "e2e: environment up in %v\n", time.Since(start).Round(100*time.Millisecond))
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
		}
	}()
	if err := waitForCapabilities(3, 2*time.Minute); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// waitForCapabilities waits until n nodes carry the reporting label, that is
// until their agents published and the controller labelled them.
func waitForCapabilities(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var nodes corev1.NodeList
		if err := env.ControlPlane.Client.List(context.Background(), &nodes, client.MatchingLabels{vmv1alpha1.LabelReporting: "true"}); err == nil && len(nodes.Items) >= n {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("fewer than %d nodes reported within %v", n, timeout)
}

func c() client.Client { return env.ControlPlane.Client }

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
	if err := c().Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	// Profiles go first, so their VMs leave the nodes before the next scenario.
	t.Cleanup(func() {
		_ = c().DeleteAllOf(context.Background(), &vmv1alpha1.VirtualMachineProfile{}, client.InNamespace(ns.Name))
		observe.Eventually(t, time.Minute, "profiles of "+ns.Name+" gone", func() (bool, string) {
			var list vmv1alpha1.VirtualMachineProfileList
			_ = c().List(context.Background(), &list, client.InNamespace(ns.Name))
			return len(list.Items) == 0, fmt.Sprintf("%d left", len(list.Items))
		})
		_ = c().Delete(context.Background(), ns)
	})
	// Runs first (cleanups run last-in first-out): the real consumers judge
	// what the controller wrote in this scenario, before it is deleted.
	t.Cleanup(func() {
		judged, err := written.CheckNamespace(t, c(), ns.Name, consumersOfSuite)
		if err != nil {
			t.Errorf("the consumers reject what the controller wrote in %s: %v", ns.Name, err)
		}
		t.Logf("consumers on %s: %v", ns.Name, judged)
	})
	return ns.Name
}

// profile is a small profile on bridge br-lan without VLAN, or with no network.
func profile(name, namespace, bridge string, antiAffinity bool) *vmv1alpha1.VirtualMachineProfile {
	p := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi"},
	}
	if bridge != "" {
		p.Spec.Networks = []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: bridge,
			IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}}}
	}
	if antiAffinity {
		p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{AntiAffinity: true}
	}
	return p
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := c().Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, namespace, name string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var p vmv1alpha1.VirtualMachineProfile
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func waitForPhase(t *testing.T, namespace, name string, phase vmv1alpha1.Phase) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, time.Minute, name+" "+string(phase), func() (bool, string) {
		p = get(t, namespace, name)
		return p.Status.Phase == phase, observe.Describe(p)
	})
	return p
}

func nodeLabels(t *testing.T, name string) map[string]string {
	t.Helper()
	var node corev1.Node
	if err := c().Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	return node.Labels
}
