package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/test/devenv"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestSeedExamplesArePlacedOnlyWhereTheyCanRun: the request's test sample
// (bridge br-mgmt, VLAN 100) and full example (SR-IOV) both need node-a, the
// only node whose agent reports VLAN 100 trunked and free VFs; the status
// says why each other node was excluded.
func TestSeedExamplesArePlacedOnlyWhereTheyCanRun(t *testing.T) {
	ns := newNamespace(t)
	start := time.Now()
	create(t, observe.Sample(t, "seed-test-vm.yaml", ns))
	p := waitForPhase(t, ns, "test-vm", vmv1alpha1.PhaseRunning)
	t.Logf("seed test sample Running on %s %v after apply", p.Status.NodeName, time.Since(start).Round(time.Millisecond))
	if p.Status.NodeName != "node-a" {
		t.Fatalf("test-vm on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	if got := observe.Exclusion(p, "node-b"); got != "VLAN 100 not allowed on uplink eth1" {
		t.Errorf("node-b: %q", got)
	}
	if got := observe.Exclusion(p, "node-c"); got != "bridge br-mgmt missing" {
		t.Errorf("node-c: %q", got)
	}

	// The full example uses the existing mgmt-net (no host requirement) and an
	// SR-IOV network; the environment provides mgmt-net and web-vm-ssh in default.
	full := observe.Sample(t, "seed-web-vm-01.yaml", "default")
	create(t, full)
	t.Cleanup(func() { _ = c().Delete(context.Background(), full) })
	p = waitForPhase(t, "default", "web-vm-01", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "node-a" {
		t.Fatalf("web-vm-01 on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	for _, node := range []string{"node-b", "node-c"} {
		if got := observe.Exclusion(p, node); got != "no SR-IOV physical function" {
			t.Errorf("%s: %q", node, got)
		}
	}
}

// TestBridgeDownExcludesTheNodeFromNewPlacements: br-lan (only on node-c)
// goes down in node-c's namespace; within seconds a new profile needing it is
// not placed and says why; the running VM stays; br-lan up again lets it run.
func TestBridgeDownExcludesTheNodeFromNewPlacements(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("lan-1", ns, "br-lan", false))
	first := waitForPhase(t, ns, "lan-1", vmv1alpha1.PhaseRunning)
	if first.Status.NodeName != "node-c" {
		t.Fatalf("lan-1 on %s", first.Status.NodeName)
	}
	var vmi kubevirtv1.VirtualMachineInstance
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "lan-1-vm"}, &vmi); err != nil {
		t.Fatal(err)
	}

	if err := env.SetLink("node-c", "br-lan", false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.SetLink("node-c", "br-lan", true) })
	down := time.Now()
	observe.Eventually(t, 30*time.Second, "node-c's capability shows br-lan down", func() (bool, string) {
		var capability vmv1alpha1.NodeCapability
		if err := c().Get(context.Background(), client.ObjectKey{Name: "node-c"}, &capability); err != nil {
			return false, err.Error()
		}
		for _, b := range capability.Status.Bridges {
			if b.Name == "br-lan" {
				return !b.Up, fmt.Sprintf("up=%v", b.Up)
			}
		}
		return false, "no br-lan"
	})
	t.Logf("bridge down → stored NodeCapability in %v", time.Since(down).Round(time.Millisecond))
	create(t, profile("lan-2", ns, "br-lan", false))
	var second *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, 30*time.Second, "lan-2 excluded from node-c", func() (bool, string) {
		second = get(t, ns, "lan-2")
		return observe.Exclusion(second, "node-c") == "bridge br-lan is down", observe.Describe(second)
	})
	t.Logf("bridge down → new profile's status says why in %v", time.Since(down).Round(time.Millisecond))
	if second.Status.Phase != vmv1alpha1.PhasePending {
		t.Fatalf("lan-2 should wait: %s", observe.Describe(second))
	}
	var still kubevirtv1.VirtualMachineInstance
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "lan-1-vm"}, &still); err != nil || still.UID != vmi.UID {
		t.Fatalf("the running VM was disturbed: %v", err)
	}

	if err := env.SetLink("node-c", "br-lan", true); err != nil {
		t.Fatal(err)
	}
	p := waitForPhase(t, ns, "lan-2", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "node-c" {
		t.Fatalf("lan-2 on %s", p.Status.NodeName)
	}
}

// TestAntiAffinitySpreadsOverTheThreeNodes: three spreading profiles land on
// three distinct nodes; a fourth reports that antiAffinity cannot be met.
func TestAntiAffinitySpreadsOverTheThreeNodes(t *testing.T) {
	ns := newNamespace(t)
	used := map[string]string{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("spread-%d", i)
		create(t, profile(name, ns, "", true))
		p := waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
		if other, taken := used[p.Status.NodeName]; taken {
			t.Fatalf("%s and %s share %s", name, other, p.Status.NodeName)
		}
		used[p.Status.NodeName] = name
	}
	create(t, profile("spread-4", ns, "", true))
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, 30*time.Second, "fourth profile says why", func() (bool, string) {
		p = get(t, ns, "spread-4")
		for _, cond := range p.Status.Conditions {
			if cond.Type == vmv1alpha1.ConditionScheduled && cond.Status == metav1.ConditionFalse && cond.Reason == vmv1alpha1.ReasonTooFewNodes {
				return true, ""
			}
		}
		return false, observe.Describe(p)
	})
	if p.Status.Phase == vmv1alpha1.PhaseRunning {
		t.Fatalf("fourth profile running: %s", observe.Describe(p))
	}
}

// TestKilledAgent: node-c's agent is killed without a goodbye. Until its
// Lease expires no label of node-c changes; then node-c leaves new
// placements (its reporting label goes, the capability labels stay).
func TestKilledAgent(t *testing.T) {
	before := nodeLabels(t, "node-c")
	if before[placement.LabelReporting] != "true" {
		t.Fatalf("node-c not reporting: %v", before)
	}
	env.KillAgent("node-c")
	t.Cleanup(func() {
		if err := env.RestartAgent("node-c"); err != nil {
			t.Error(err)
		}
		if err := waitForCapabilities(3, time.Minute); err != nil {
			t.Error(err)
		}
	})
	killed := time.Now()
	// The last renewal was at most one interval before the kill; stay clear of
	// the earliest expiry by two seconds more.
	for time.Since(killed) < devenv.AgentLeaseDuration-devenv.AgentRenewInterval-2*time.Second {
		if now := nodeLabels(t, "node-c"); !sameLabels(before, now) {
			t.Fatalf("labels changed %v after the agent died, before its Lease expired: %v → %v", time.Since(killed).Round(time.Second), before, now)
		}
		time.Sleep(time.Second)
	}
	observe.Eventually(t, 30*time.Second, "node-c stale after its Lease", func() (bool, string) {
		now := nodeLabels(t, "node-c")
		return now[placement.LabelReporting] == "", fmt.Sprint(now)
	})
	t.Logf("node-c left new placements %v after its agent was killed (Lease %v)", time.Since(killed).Round(time.Second), devenv.AgentLeaseDuration)
	after := nodeLabels(t, "node-c")
	for key, value := range before {
		if key != placement.LabelReporting && strings.HasPrefix(key, placement.LabelPrefix) && after[key] != value {
			t.Errorf("capability label %s flapped when the agent went silent", key)
		}
	}
	ns := newNamespace(t)
	create(t, profile("after-kill", ns, "br-lan", false))
	observe.Eventually(t, 30*time.Second, "node-c excluded as silent", func() (bool, string) {
		p := get(t, ns, "after-kill")
		return observe.Exclusion(p, "node-c") == "agent not reporting: its Lease expired", observe.Describe(p)
	})
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestHostKVMIsReportedAsTheHostHasIt: node-c's agent probes this host's own
// /dev/kvm. On a machine with KVM it reports it available (API 12); on one
// without, it says the device does not exist. Either way placement in this
// environment does not depend on it (--allow-emulation), so every other
// scenario gives the same result on both kinds of machine.
func TestHostKVMIsReportedAsTheHostHasIt(t *testing.T) {
	host := probe.NewKVM("/dev/kvm", "/sys", "/proc").ProbeKVM()
	var capability vmv1alpha1.NodeCapability
	if err := c().Get(context.Background(), client.ObjectKey{Name: "node-c"}, &capability); err != nil {
		t.Fatal(err)
	}
	reported := capability.Status.KVM
	if reported == nil || reported.Available != host.Available || reported.APIVersion != host.APIVersion || reported.Reason != host.Reason {
		t.Fatalf("node-c reports KVM %+v, the host probes %+v", reported, host)
	}
	if host.Available && host.APIVersion != probe.KVMAPIVersion {
		t.Fatalf("a usable /dev/kvm answers API %d", host.APIVersion)
	}
	if !host.Available && !strings.Contains(host.Reason, "/dev/kvm") {
		t.Fatalf("reason should name the device: %q", host.Reason)
	}
	t.Logf("this host: KVM available=%v (%s); node-a and node-b (emulated): %s", host.Available, host.Reason, kvmOf(t, "node-a"))
}

func kvmOf(t *testing.T, node string) string {
	t.Helper()
	var capability vmv1alpha1.NodeCapability
	if err := c().Get(context.Background(), client.ObjectKey{Name: node}, &capability); err != nil || capability.Status.KVM == nil {
		t.Fatalf("%s: %v", node, err)
	}
	return fmt.Sprintf("available=%v %s", capability.Status.KVM.Available, capability.Status.KVM.Reason)
}
