//go:build e2e

package e2e

// The end-to-end scenarios of the original request (its list of
// end-to-end tests): basic, management plus business networks, system
// plus data disks, and the high-availability and recovery ones (a lost
// node, a deleted VM). Anti-affinity and a bridge down and back are in
// scenarios_test.go; automatic restart under each restart policy lives
// with the simulator's run strategies.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/recovery"
	"github.com/jianfenliu/vmoperator/test/devenv"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestBasicSeedTestVM: the request's test VM (2 CPUs, 4Gi, one disk, one
// network: br-mgmt VLAN 100, static 192.168.100.10/24) runs on node-a, the
// only node where HostNetwork mgmt is verified, with every condition True,
// its address and its disk in the status, and a VM of the asked size.
func TestBasicSeedTestVM(t *testing.T) {
	ns := newNamespace(t)
	start := time.Now()
	create(t, observe.Sample(t, "vm_v1alpha1_virtualmachineprofile.yaml", ns))
	p := waitForReady(t, ns, "test-vm")
	t.Logf("seed test VM Ready on %s %v after apply", p.Status.NodeName, time.Since(start).Round(time.Millisecond))
	if p.Status.NodeName != "node-a" || p.Status.Phase != vmv1alpha1.PhaseRunning || p.Status.VMName != "test-vm-vm" {
		t.Fatalf("test-vm: %s vm=%q", observe.Describe(p), p.Status.VMName)
	}
	assertConditionsTrue(t, p, vmv1alpha1.ConditionReady, vmv1alpha1.ConditionNetworksConfigured, vmv1alpha1.ConditionVolumesBound, vmv1alpha1.ConditionScheduled)
	if n := p.Status.Networks; len(n) != 1 || n[0].HostNetwork != "mgmt" || !strings.HasPrefix(n[0].IPAddress, "192.168.100.10") {
		t.Errorf("network status: %+v", n)
	}
	if v := p.Status.Volumes; len(v) != 1 || !v[0].Bound || v[0].PVCName != "test-vm-system" {
		t.Errorf("volume status: %+v", v)
	}
	vm := virtualMachine(t, ns, "test-vm-vm")
	domain := vm.Spec.Template.Spec.Domain
	if domain.CPU == nil || domain.CPU.Cores != 2 || domain.Memory == nil || domain.Memory.Guest == nil || domain.Memory.Guest.Cmp(resource.MustParse("4Gi")) != 0 {
		t.Errorf("VM size: CPU %+v memory %+v", domain.CPU, domain.Memory)
	}
	assertClaim(t, ns, "test-vm-system", "huamei-sc-ssd", "20Gi")
}

// TestManagementAndBusinessNetworks: a management network (br-mgmt, VLAN
// 100, static) and a business network (SR-IOV, VLAN 200, DHCP) give the VM
// two interfaces on two attachments; it runs on node-a (mgmt verified,
// free VFs) and the status has both addresses.
func TestManagementAndBusinessNetworks(t *testing.T) {
	ns := newNamespace(t)
	start := time.Now()
	create(t, &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "two-nets", Namespace: ns},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", Networks: []vmv1alpha1.NetworkConfig{
			{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, VLANID: ptr.To[int32](100),
				IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("192.168.100.20/24")}},
			{Name: "business", Type: vmv1alpha1.NetworkTypeSRIOV, VLANID: ptr.To[int32](200),
				IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}},
		}}})
	p := waitForReady(t, ns, "two-nets")
	t.Logf("two networks Ready on %s %v after apply", p.Status.NodeName, time.Since(start).Round(time.Millisecond))
	if p.Status.NodeName != "node-a" {
		t.Fatalf("two-nets on %s: %s", p.Status.NodeName, observe.Describe(p))
	}
	assertConditionsTrue(t, p, vmv1alpha1.ConditionReady, vmv1alpha1.ConditionNetworksConfigured)
	want := map[string]struct{ hostNetwork, address string }{"mgmt": {"mgmt", "192.168.100.20"}, "business": {"business", "198.18."}}
	if len(p.Status.Networks) != 2 {
		t.Fatalf("network status: %+v", p.Status.Networks)
	}
	for _, n := range p.Status.Networks {
		if w := want[n.Name]; n.HostNetwork != w.hostNetwork || !strings.HasPrefix(n.IPAddress, w.address) || n.MACAddress == "" {
			t.Errorf("network %s: %+v, want HostNetwork %s and an address starting %s", n.Name, n, w.hostNetwork, w.address)
		}
	}
	vm := virtualMachine(t, ns, "two-nets-vm")
	interfaces := vm.Spec.Template.Spec.Domain.Devices.Interfaces
	if len(interfaces) != 2 || interfaces[0].Bridge == nil || interfaces[1].SRIOV == nil {
		t.Fatalf("VM interfaces: %+v", interfaces)
	}
	for _, network := range vm.Spec.Template.Spec.Networks {
		if network.Multus == nil || !attachmentExists(t, ns, network.Multus.NetworkName) {
			t.Errorf("VM network %s has no attachment: %+v", network.Name, network.NetworkSource)
		}
	}
}

// TestSystemAndDataDisks: a boot disk on the SSD class and a large data
// disk on the HDD class become two bound claims of their class and size;
// the VM boots from the system disk and mounts both.
func TestSystemAndDataDisks(t *testing.T) {
	ns := newNamespace(t)
	start := time.Now()
	create(t, &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "two-disks", Namespace: ns},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", Disks: []vmv1alpha1.DiskConfig{
			{Name: "system", Size: "80Gi", StorageClassName: "huamei-sc-ssd", Boot: true},
			{Name: "data", Size: "500Gi", StorageClassName: "huamei-sc-hdd"},
		}}})
	p := waitForReady(t, ns, "two-disks")
	t.Logf("two disks Ready on %s %v after apply", p.Status.NodeName, time.Since(start).Round(time.Millisecond))
	assertConditionsTrue(t, p, vmv1alpha1.ConditionReady, vmv1alpha1.ConditionVolumesBound)
	bound := map[string]string{}
	for _, v := range p.Status.Volumes {
		if v.Bound {
			bound[v.Name] = v.PVCName
		}
	}
	if len(p.Status.Volumes) != 2 || bound["system"] != "two-disks-system" || bound["data"] != "two-disks-data" {
		t.Fatalf("volume status: %+v", p.Status.Volumes)
	}
	assertClaim(t, ns, "two-disks-system", "huamei-sc-ssd", "80Gi")
	assertClaim(t, ns, "two-disks-data", "huamei-sc-hdd", "500Gi")
	vm := virtualMachine(t, ns, "two-disks-vm")
	boot := map[string]uint{}
	for _, disk := range vm.Spec.Template.Spec.Domain.Devices.Disks {
		boot[disk.Name] = 0
		if disk.BootOrder != nil {
			boot[disk.Name] = *disk.BootOrder
		}
	}
	if b, ok := boot["system"]; !ok || b != 1 {
		t.Errorf("the VM does not boot from its system disk first: %v", boot)
	}
	if b, ok := boot["data"]; !ok || b != 0 {
		t.Errorf("the VM does not mount its data disk (without boot order): %v", boot)
	}
}

// recoveryLabel selects the nodes of TestLostNode.
const recoveryLabel = "vmop.dev/recovery"

// TestLostNode: two VMs run on node-c, one without disks, one with a
// ReadWriteOnce disk; node-b can take them too. node-c is lost: its agent
// dies and its Ready condition goes Unknown (as the node lifecycle
// controller sets it when the kubelet stops posting). Once the agent's
// Lease expires, the diskless VM restarts on node-b; the other stays on
// node-c (its claim may still be attached there) and its Ready condition
// says what it waits for. When an admin fences node-c (taint
// out-of-service) it restarts on node-b with the same claim.
func TestLostNode(t *testing.T) {
	ns := newNamespace(t)
	setNodeLabel(t, "node-c", recoveryLabel, "true")
	inRecovery := &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{recoveryLabel: "true"}}
	create(t, &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "stateless", Namespace: ns},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", HighAvailability: inRecovery}})
	create(t, &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "stateful", Namespace: ns},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", HighAvailability: inRecovery,
			Disks: []vmv1alpha1.DiskConfig{{Name: "system", Size: "1Gi", StorageClassName: "huamei-sc-ssd", Boot: true}}}})
	instances := map[string]*kubevirtv1.VirtualMachineInstance{}
	for _, name := range []string{"stateless", "stateful"} {
		if p := waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning); p.Status.NodeName != "node-c" {
			t.Fatalf("%s on %s, want node-c", name, p.Status.NodeName)
		}
		instances[name] = vmInstance(t, ns, name+"-vm")
	}
	setNodeLabel(t, "node-b", recoveryLabel, "true")

	env.KillAgent("node-c")
	setNodeReady(t, "node-c", corev1.ConditionUnknown)
	lost := time.Now()
	t.Cleanup(func() { restoreNode(t, "node-c") })

	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, 2*time.Minute, "stateless restarted on node-b", func() (bool, string) {
		p = get(t, ns, "stateless")
		return p.Status.Phase == vmv1alpha1.PhaseRunning && p.Status.NodeName == "node-b", observe.Describe(p)
	})
	t.Logf("diskless VM restarted on node-b %v after node-c was lost (agent Lease %v)", time.Since(lost).Round(time.Millisecond), devenv.AgentLeaseDuration)
	expectEvent(t, ns, "stateless", vmv1alpha1.EventRestartedElsewhere)

	observe.Eventually(t, 30*time.Second, "stateful says what it waits for", func() (bool, string) {
		p = get(t, ns, "stateful")
		ready := meta.FindStatusCondition(p.Status.Conditions, vmv1alpha1.ConditionReady)
		return ready != nil && ready.Reason == vmv1alpha1.ReasonNodeLost, observe.Describe(p)
	})
	message := meta.FindStatusCondition(p.Status.Conditions, vmv1alpha1.ConditionReady).Message
	for _, want := range []string{"node node-c is lost", "ReadWriteOnce claim(s) stateful-system", recovery.TaintOutOfService} {
		if !strings.Contains(message, want) {
			t.Errorf("stateful's Ready message does not say %q: %s", want, message)
		}
	}
	t.Logf("stateful waits: %s", message)
	expectEvent(t, ns, "stateful", vmv1alpha1.ReasonNodeLost)
	// Not double-attached: the same instance stays on node-c, reconciles later too.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if now := vmInstance(t, ns, "stateful-vm"); now.UID != instances["stateful"].UID || now.Status.NodeName != "node-c" {
			t.Fatalf("stateful left node-c before it was fenced: instance %s on %q", now.UID, now.Status.NodeName)
		}
	}

	taintNode(t, "node-c", recovery.TaintOutOfService)
	fenced := time.Now()
	observe.Eventually(t, time.Minute, "stateful restarted on node-b", func() (bool, string) {
		p = get(t, ns, "stateful")
		return p.Status.Phase == vmv1alpha1.PhaseRunning && p.Status.NodeName == "node-b", observe.Describe(p)
	})
	t.Logf("VM with a ReadWriteOnce disk restarted on node-b %v after node-c was fenced", time.Since(fenced).Round(time.Millisecond))
	if v := p.Status.Volumes; len(v) != 1 || !v[0].Bound || v[0].PVCName != "stateful-system" {
		t.Errorf("stateful's disk after the restart: %+v", v)
	}
}

// TestDeletedVMIsRebuilt: `kubectl delete vm` of a running profile's VM;
// the controller creates it again with the same disk, the profile runs
// again, and an event says the VM was re-created.
func TestDeletedVMIsRebuilt(t *testing.T) {
	ns := newNamespace(t)
	create(t, &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "rebuilt", Namespace: ns},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi",
			Networks: []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lan",
				IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}}},
			Disks: []vmv1alpha1.DiskConfig{{Name: "system", Size: "1Gi", StorageClassName: "huamei-sc-ssd", Boot: true}}}})
	before := waitForReady(t, ns, "rebuilt")
	vm := virtualMachine(t, ns, "rebuilt-vm")
	claim := claimUID(t, ns, "rebuilt-system")
	deleted := time.Now()
	out, err := exec.Command("kubectl", "--kubeconfig", env.ControlPlane.Kubeconfig, "delete", "vm", "rebuilt-vm", "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl delete vm: %v\n%s", err, out)
	}
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, time.Minute, "rebuilt Running on a new VM", func() (bool, string) {
		var again kubevirtv1.VirtualMachine
		if err := c().Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "rebuilt-vm"}, &again); err != nil || again.UID == vm.UID {
			return false, fmt.Sprintf("no new VM yet (%v)", err)
		}
		p = get(t, ns, "rebuilt")
		return meta.IsStatusConditionTrue(p.Status.Conditions, vmv1alpha1.ConditionReady), observe.Describe(p)
	})
	t.Logf("kubectl delete vm → VM re-created and Ready on %s in %v", p.Status.NodeName, time.Since(deleted).Round(time.Millisecond))
	expectEvent(t, ns, "rebuilt", vmv1alpha1.EventRecreated)
	if claimUID(t, ns, "rebuilt-system") != claim {
		t.Error("the disk was replaced when the VM was re-created")
	}
	if p.Status.VMName != before.Status.VMName || len(p.Status.Networks) != 1 || p.Status.Networks[0].IPAddress != before.Status.Networks[0].IPAddress {
		t.Errorf("status after the rebuild %+v, before %+v", p.Status.Networks, before.Status.Networks)
	}
}

func waitForReady(t *testing.T, namespace, name string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, time.Minute, name+" Ready", func() (bool, string) {
		p = get(t, namespace, name)
		return meta.IsStatusConditionTrue(p.Status.Conditions, vmv1alpha1.ConditionReady), observe.Describe(p)
	})
	return p
}

func assertConditionsTrue(t *testing.T, p *vmv1alpha1.VirtualMachineProfile, types ...string) {
	t.Helper()
	for _, conditionType := range types {
		if !meta.IsStatusConditionTrue(p.Status.Conditions, conditionType) {
			t.Errorf("%s not True: %s", conditionType, observe.Describe(p))
		}
	}
}

func virtualMachine(t *testing.T, namespace, name string) *kubevirtv1.VirtualMachine {
	t.Helper()
	var vm kubevirtv1.VirtualMachine
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &vm); err != nil {
		t.Fatal(err)
	}
	return &vm
}

func vmInstance(t *testing.T, namespace, name string) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	var vmi kubevirtv1.VirtualMachineInstance
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &vmi); err != nil {
		t.Fatal(err)
	}
	return &vmi
}

func attachmentExists(t *testing.T, namespace, reference string) bool {
	t.Helper()
	if ns, name, ok := strings.Cut(reference, "/"); ok {
		namespace, reference = ns, name
	}
	out, err := exec.Command("kubectl", "--kubeconfig", env.ControlPlane.Kubeconfig, "get", "network-attachment-definitions", reference, "-n", namespace, "-o", "name").CombinedOutput()
	return err == nil && strings.TrimSpace(string(out)) != ""
}

func assertClaim(t *testing.T, namespace, name, class, size string) {
	t.Helper()
	var claim corev1.PersistentVolumeClaim
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &claim); err != nil {
		t.Fatal(err)
	}
	request := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if claim.Status.Phase != corev1.ClaimBound || ptr.Deref(claim.Spec.StorageClassName, "") != class || request.Cmp(resource.MustParse(size)) != 0 {
		t.Errorf("claim %s: %s, class %q, request %s; want Bound, %s, %s", name, claim.Status.Phase, ptr.Deref(claim.Spec.StorageClassName, ""), request.String(), class, size)
	}
}

func claimUID(t *testing.T, namespace, name string) string {
	t.Helper()
	var claim corev1.PersistentVolumeClaim
	if err := c().Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &claim); err != nil {
		t.Fatal(err)
	}
	return string(claim.UID)
}

// expectEvent waits until vmop-controller recorded an event with reason on the profile.
func expectEvent(t *testing.T, namespace, profile, reason string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("event %s on %s", reason, profile), func() (bool, string) {
		var list eventsv1.EventList
		if err := c().List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == profile && e.ReportingController == "vmop-controller" {
				if e.Reason == reason {
					return true, ""
				}
				seen = append(seen, e.Reason)
			}
		}
		return false, fmt.Sprintf("events seen: %v", seen)
	})
}

// setNodeLabel labels a node for the test, and removes the label after it.
func setNodeLabel(t *testing.T, node, key, value string) {
	t.Helper()
	patchNode(t, node, fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value))
	t.Cleanup(func() { patchNode(t, node, fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, key)) })
}

func taintNode(t *testing.T, node, key string) {
	t.Helper()
	patchNode(t, node, fmt.Sprintf(`{"spec":{"taints":[{"key":%q,"value":"nodeshutdown","effect":"NoExecute"}]}}`, key))
}

func patchNode(t *testing.T, node, patch string) {
	t.Helper()
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := c().Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Errorf("patch node %s with %s: %v", node, patch, err)
	}
}

// setNodeReady writes a node's Ready condition, as the node lifecycle
// controller does when its kubelet stops posting (Unknown). The
// environment's nodes have no kubelet and no conditions otherwise.
func setNodeReady(t *testing.T, node string, status corev1.ConditionStatus) {
	t.Helper()
	now := metav1.Now()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":%q,"reason":"NodeStatusUnknown","message":"Kubelet stopped posting node status.","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
		status, now.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := c().Status().Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatalf("set node %s Ready=%s: %v", node, status, err)
	}
}

// restoreNode gives a lost node back as the environment made it: no
// conditions, no taints, its agent running and reporting.
func restoreNode(t *testing.T, node string) {
	t.Helper()
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := c().Status().Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"conditions":null}}`))); err != nil {
		t.Error(err)
	}
	patchNode(t, node, `{"spec":{"taints":null}}`)
	if err := env.RestartAgent(node); err != nil {
		t.Error(err)
	}
	if err := waitForCapabilities(3, time.Minute); err != nil {
		t.Error(err)
	}
}
