//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/devenv"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestSeedExamplesArePlacedOnlyWhereTheyCanRun: the request's test sample
// (bridge br-mgmt, VLAN 100) and full example (SR-IOV) both need node-a,
// the only node where the agent verified HostNetwork mgmt in the kernel
// (node-b's nmstate claims it built br-mgmt and did not) and where the PF
// of HostNetwork business has free VFs; the status says why each other
// node was excluded.
func TestSeedExamplesArePlacedOnlyWhereTheyCanRun(t *testing.T) {
	ns := newNamespace(t)
	start := time.Now()
	create(t, observe.Sample(t, "vm_v1alpha1_virtualmachineprofile.yaml", ns))
	p := waitForPhase(t, ns, "test-vm", vmv1alpha1.PhaseRunning)
	t.Logf("seed test sample Running on %s %v after apply", p.Status.NodeName, time.Since(start).Round(time.Millisecond))
	if p.Status.NodeName != "node-a" {
		t.Fatalf("test-vm on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	p = waitForExclusions(t, p, map[string]string{"node-b": driftOnNodeB, "node-c": notSelectedByMgmt})
	if p.Status.Networks[0].HostNetwork != "mgmt" {
		t.Errorf("network status: %+v", p.Status.Networks)
	}

	// Both examples take 192.168.100.10 on VLAN 100 of br-mgmt (the full
	// example through the attachment mgmt-net): one segment, so the second
	// would be refused with StaticIPConflict while the first runs.
	if err := c().Delete(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, time.Minute, "test-vm gone", func() (bool, string) {
		var gone vmv1alpha1.VirtualMachineProfile
		err := c().Get(context.Background(), client.ObjectKeyFromObject(p), &gone)
		return err != nil, "still there"
	})

	// The full example uses the existing mgmt-net (br-mgmt, VLAN 100: the
	// segment of HostNetwork mgmt) and an SR-IOV network (the default
	// HostNetwork business); the environment provides mgmt-net and
	// web-vm-ssh in default.
	full := observe.Sample(t, "seed-web-vm-01.yaml", "default")
	create(t, full)
	t.Cleanup(func() { _ = c().Delete(context.Background(), full) })
	p = waitForPhase(t, "default", "web-vm-01", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "node-a" {
		t.Fatalf("web-vm-01 on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	waitForExclusions(t, p, map[string]string{"node-b": driftOnNodeB, "node-c": notSelectedByMgmt})
}

const notSelectedByMgmt = "HostNetwork mgmt does not select this node (its nodeSelector)"

// waitForExclusions waits until the profile's status gives each node the
// wanted reason. The VM can run on node-a before node-b's agent has seen
// the enactment of its nmstate: until then node-b is excluded for "no
// enactment for this node yet", and the agent's next publication moves the
// status on to the drift it finds.
func waitForExclusions(t *testing.T, p *vmv1alpha1.VirtualMachineProfile, want map[string]string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	observe.Eventually(t, 30*time.Second, p.Name+" exclusions", func() (bool, string) {
		p = get(t, p.Namespace, p.Name)
		var wrong []string
		for node, reason := range want {
			if got := observe.Exclusion(p, node); got != reason {
				wrong = append(wrong, fmt.Sprintf("%s: %q", node, got))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
	return p
}

// driftOnNodeB is why node-b never qualifies for HostNetwork mgmt: its
// nmstate (the stand-in in drift mode) reports the policy Available, and
// its agent finds nothing of it in the kernel.
const driftOnNodeB = "HostNetwork mgmt not verified: policy vmop-mgmt: nmstate reports Available but bridge br-mgmt does not exist"

// TestBridgeDownExcludesTheNodeFromNewPlacements: br-lan (only on node-c)
// goes down in node-c's namespace; within seconds a new profile needing it is
// not placed and says why; the running VM stays, and its status says its
// node no longer qualifies; br-lan up again lets the new one run and the
// running one's status recovers.
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
	// The running VM's own status says its node no longer qualifies, and why.
	observe.Eventually(t, 30*time.Second, "lan-1 says its node no longer qualifies", func() (bool, string) {
		first = get(t, ns, "lan-1")
		ready := meta.FindStatusCondition(first.Status.Conditions, vmv1alpha1.ConditionReady)
		return first.Status.Phase == vmv1alpha1.PhaseRunning && ready != nil && ready.Status == metav1.ConditionFalse &&
			ready.Reason == vmv1alpha1.ReasonNoEligibleNodes &&
			strings.Contains(ready.Message, "keeps running on node node-c, which no longer qualifies (bridge br-lan is down)"), observe.Describe(first)
	})

	if err := env.SetLink("node-c", "br-lan", true); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	p := waitForPhase(t, ns, "lan-2", vmv1alpha1.PhaseRunning)
	if p.Status.NodeName != "node-c" {
		t.Fatalf("lan-2 on %s", p.Status.NodeName)
	}
	// lan-1's status recovers, on the instance it had all along.
	observe.Eventually(t, 30*time.Second, "lan-1 Ready again", func() (bool, string) {
		first = get(t, ns, "lan-1")
		return meta.IsStatusConditionTrue(first.Status.Conditions, vmv1alpha1.ConditionReady) && observe.Exclusion(first, "node-c") == "" &&
			meta.IsStatusConditionTrue(first.Status.Conditions, vmv1alpha1.ConditionScheduled), observe.Describe(first)
	})
	t.Logf("bridge up → running VM's status recovered in %v", time.Since(up).Round(time.Millisecond))
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "lan-1-vm"}, &still); err != nil || still.UID != vmi.UID {
		t.Fatalf("the running VM was disturbed: %v", err)
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
	if before[vmv1alpha1.LabelReporting] != "true" {
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
		return now[vmv1alpha1.LabelReporting] == "", fmt.Sprint(now)
	})
	t.Logf("node-c left new placements %v after its agent was killed (Lease %v)", time.Since(killed).Round(time.Second), devenv.AgentLeaseDuration)
	after := nodeLabels(t, "node-c")
	for key, value := range before {
		if key != vmv1alpha1.LabelReporting && strings.HasPrefix(key, vmv1alpha1.CapabilityLabelPrefix) && after[key] != value {
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

// TestDeclaredHostNetworkEndToEnd: with the agents up, an admin declares a
// managed bridge on eth2 of the mgmt nodes. The controller writes its
// policy; nmstate (the stand-in) builds it in node-a's kernel and claims to
// on node-b (drift); the agents verify what their kernels show. The
// HostNetwork reports 1 of 2 nodes with node-b's drift; a profile on it
// runs on node-a, and node-b's exclusion says why. Deleting the profile
// and the HostNetwork reverts node-a's kernel.
func TestDeclaredHostNetworkEndToEnd(t *testing.T) {
	ctx := context.Background()
	declared := time.Now()
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}, Spec: vmv1alpha1.HostNetworkSpec{
		Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-e2e", Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth2"}},
		AllowedVLANs: []vmv1alpha1.VLANRange{"300-301"}, NodeSelector: map[string]string{devenv.LabelMgmt: "true"},
		NamespaceSelector: metav1.LabelSelector{}}}
	create(t, h)
	t.Cleanup(func() { _ = c().Delete(ctx, h) })
	observe.Eventually(t, 2*time.Minute, "br-e2e verified on node-a, drift reported on node-b", func() (bool, string) {
		var got vmv1alpha1.HostNetwork
		if err := c().Get(ctx, client.ObjectKeyFromObject(h), &got); err != nil {
			return false, err.Error()
		}
		return got.Status.Ready == "1/2" && len(got.Status.Problems) == 1 && got.Status.Problems[0].Node == "node-b" &&
			strings.Contains(got.Status.Problems[0].Message, "nmstate reports Available but bridge br-e2e does not exist"), fmt.Sprintf("%+v", got.Status)
	})
	t.Logf("HostNetwork declared → built and verified on node-a in %v", time.Since(declared).Round(time.Millisecond))
	bridge := kernelBridge(t, "node-a", "br-e2e")
	// The kernel holds what NetworkManager makes of a trunk: the bridge's
	// default PVID (VLAN 1, untagged) beside the trunk tags. The agent
	// reports the kernel as it is, and verifies the policy as nmstate
	// would report it (see docs/fidelity.md, nmstate).
	if bridge == nil || !bridge.VLANFiltering || len(bridge.Ports) != 1 || bridge.Ports[0].Name != "eth2" ||
		bridge.Ports[0].VLANs != "1,300-301" || bridge.Ports[0].PVID != 1 {
		t.Fatalf("node-a's agent reports br-e2e as %+v, want eth2 trunking 300-301 beside the default PVID 1", bridge)
	}

	ns := newNamespace(t)
	applied := time.Now()
	create(t, &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "on-e2e", Namespace: ns},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", Networks: []vmv1alpha1.NetworkConfig{{Name: "data", Type: vmv1alpha1.NetworkTypeBridge,
			BridgeName: "br-e2e", VLANID: ptr.To[int32](301), IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}}}}})
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, time.Minute, "on-e2e Running", func() (bool, string) {
		p = get(t, ns, "on-e2e")
		return p.Status.Phase == vmv1alpha1.PhaseRunning, observe.Describe(p) + fmt.Sprintf("; node-a's labels: %v", capabilityLabels(t, "node-a"))
	})
	t.Logf("profile applied → Running on %s in %v", p.Status.NodeName, time.Since(applied).Round(time.Millisecond))
	if p.Status.NodeName != "node-a" {
		t.Fatalf("on-e2e on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	if got := observe.Exclusion(p, "node-b"); !strings.Contains(got, "HostNetwork e2e not verified: policy vmop-e2e: nmstate reports Available but bridge br-e2e does not exist") {
		t.Errorf("node-b: %q", got)
	}

	if err := c().Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := c().Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 2*time.Minute, "br-e2e reverted on node-a and the HostNetwork gone", func() (bool, string) {
		var gone vmv1alpha1.HostNetwork
		err := c().Get(ctx, client.ObjectKeyFromObject(h), &gone)
		return kernelBridge(t, "node-a", "br-e2e") == nil && err != nil, fmt.Sprintf("HostNetwork: %v", err)
	})
}

// kernelBridge is a bridge as a node's agent reports it, or nil.
func kernelBridge(t *testing.T, node, name string) *vmv1alpha1.BridgeStatus {
	t.Helper()
	var capability vmv1alpha1.NodeCapability
	if err := c().Get(context.Background(), client.ObjectKey{Name: node}, &capability); err != nil {
		t.Fatal(err)
	}
	for i := range capability.Status.Bridges {
		if capability.Status.Bridges[i].Name == name {
			return &capability.Status.Bridges[i]
		}
	}
	return nil
}

// TestUndeclaredBridgeIsRefusedInDescribe: a profile on a bridge no
// HostNetwork declares gets no VM, and `kubectl describe` says why.
func TestUndeclaredBridgeIsRefusedInDescribe(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("nowhere", ns, "br-nope", false))
	observe.Eventually(t, 30*time.Second, "refused", func() (bool, string) {
		p := get(t, ns, "nowhere")
		return p.Status.Phase == vmv1alpha1.PhaseError, observe.Describe(p)
	})
	out, err := exec.Command("kubectl", "--kubeconfig", env.ControlPlane.Kubeconfig, "describe", "vmprofile", "nowhere", "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl describe: %v\n%s", err, out)
	}
	for _, want := range []string{"HostNetworkNotDeclared", "no HostNetwork of type bridge declares bridge br-nope"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl describe does not say %q:\n%s", want, out)
		}
	}
	if getVM(t, ns, "nowhere-vm") {
		t.Fatal("a refused profile got a VM")
	}
}

func getVM(t *testing.T, namespace, name string) bool {
	t.Helper()
	var vm kubevirtv1.VirtualMachine
	err := c().Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &vm)
	return err == nil
}

// capabilityLabels are a node's labels under the controller's prefix.
func capabilityLabels(t *testing.T, node string) []string {
	t.Helper()
	var out []string
	for key, value := range nodeLabels(t, node) {
		if strings.HasPrefix(key, vmv1alpha1.CapabilityLabelPrefix) {
			out = append(out, key+"="+value)
		}
	}
	slices.Sort(out)
	return out
}
