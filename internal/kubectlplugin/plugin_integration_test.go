//go:build integration

package kubectlplugin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

var testCluster *controlplane.ControlPlane

func TestMain(m *testing.M) {
	controlplane.RunTests(m, &testCluster)
}

// run runs kubectl vmprofile in-process against cp with args and returns
// its exit code and output; exec records a hand-over to virtctl.
func run(t *testing.T, cp *controlplane.ControlPlane, env Env, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env.Stdout, env.Stderr = &stdout, &stderr
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.LookPath == nil {
		env.LookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Main(ctx, append([]string{args[0], "--kubeconfig", cp.Kubeconfig}, args[1:]...), env)
	return code, stdout.String(), stderr.String()
}

func mustContain(t *testing.T, output string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(output, w) {
			t.Errorf("output lacks %q:\n%s", w, output)
		}
	}
}

func create(t *testing.T, c client.Client, objects ...client.Object) {
	t.Helper()
	for _, obj := range objects {
		if err := c.Create(context.Background(), obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// agentNode makes a node whose agent reports capability and renews its
// Lease in vmop-system (an hour long: the suite outlasts a real 40 s
// Lease); a nil capability makes a node without an agent.
func agentNode(t *testing.T, c client.Client, name string, capability *vmv1alpha1.NodeCapabilityStatus, unschedulable bool) {
	t.Helper()
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Unschedulable: unschedulable}}
	create(t, c, node)
	if capability == nil {
		return
	}
	nc := &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: name}}
	create(t, c, nc)
	nc.Status = *capability
	if err := c.Status().Update(ctx, nc); err != nil {
		t.Fatalf("write NodeCapability %s status: %v", name, err)
	}
	create(t, c, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "vmop-system",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID}}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](3600),
			RenewTime: &metav1.MicroTime{Time: time.Now()}},
	})
}

func bridgeCapability(vlans string) *vmv1alpha1.NodeCapabilityStatus {
	return &vmv1alpha1.NodeCapabilityStatus{
		KVM:     &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12},
		Bridges: []vmv1alpha1.BridgeStatus{{Name: "br-mgmt", Up: true, VLANFiltering: true, Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true, VLANs: vlans}}}},
		Uplinks: []vmv1alpha1.UplinkStatus{{Name: "eth1", Up: true, Carrier: true}},
	}
}

// controllerDeployment is the chart's controller Deployment as far as the
// plugin reads it: its labels and flags. No pod runs it.
func controllerDeployment() *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "vmoperator", "app.kubernetes.io/component": "controller"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "vmop-controller", Namespace: "vmop-system", Labels: labels},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "manager", Image: "registry.local/vmoperator/vmop-controller:0.2.0",
				Args: []string{"--leader-elect=true", "--agent-lease-namespace=vmop-system", "--allow-emulation=false", "--allow-undeclared-host-networks=true"},
			}}}}},
	}
}

// testProfile is the request's test VM: one bridge network on VLAN 100.
func testProfile() *vmv1alpha1.VirtualMachineProfile {
	return &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "test-vm", Namespace: "demo"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 2, Memory: "4Gi", Networks: []vmv1alpha1.NetworkConfig{
			{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt", VLANID: ptr.To[int32](100)},
		}},
	}
}

var setUpOnce = map[*controlplane.ControlPlane]bool{}

// setUp makes three nodes (eligible, VLAN 100 missing, no agent), the
// controller's Deployment and the test profile, once per control plane.
func setUp(t *testing.T, cp *controlplane.ControlPlane) {
	t.Helper()
	if setUpOnce[cp] {
		return
	}
	setUpOnce[cp] = true
	c := cp.Client
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vmop-system"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}})
	agentNode(t, c, "node-1", bridgeCapability("1,100-110"), false)
	agentNode(t, c, "node-2", bridgeCapability("200"), false)
	agentNode(t, c, "node-3", nil, false)
	create(t, c, controllerDeployment(), testProfile())
}

// TestWhyExplainsEachNode: why judges as the controller's Deployment says
// (undeclared networks allowed, KVM required) and gives every excluded
// node its reason and fix.
func TestWhyExplainsEachNode(t *testing.T) {
	setUp(t, testCluster)
	code, out, errOut := run(t, testCluster, Env{}, "why", "test-vm", "-n", "demo")
	if code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	t.Logf("kubectl vmprofile why test-vm:\n%s", out)
	mustContain(t, out,
		"VirtualMachineProfile demo/test-vm: VM test-vm-vm\n",
		"Judged as controller vmop-system/vmop-controller does: KVM required\n",
		"Needs: an agent reporting; schedulable; KVM; bridge br-mgmt up; VLAN 100 on bridge br-mgmt\n",
		"1 of 3 node(s) can host the VM.\n",
		"  node-1: eligible\n",
		"  node-2: excluded: VLAN 100 not allowed on uplink eth1\n"+
			"      fix: allow VLAN 100 on bridge br-mgmt's uplink port on node-2 (bridge vlan add vid 100 dev <uplink>)",
		"  node-3: excluded: no NodeCapability: the vmop-agent has not reported\n"+
			"      fix: run vmop-agent on node-3",
	)
	// The controller's status recorded another count: why says so.
	profile := &vmv1alpha1.VirtualMachineProfile{}
	if err := testCluster.Client.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "test-vm"}, profile); err != nil {
		t.Fatal(err)
	}
	profile.Status.Placement = &vmv1alpha1.PlacementStatus{EligibleNodes: 3}
	if err := testCluster.Client.Status().Update(context.Background(), profile); err != nil {
		t.Fatal(err)
	}
	_, out, _ = run(t, testCluster, Env{}, "why", "test-vm", "-n", "demo", "--allow-emulation")
	mustContain(t, out, "Judged as controller vmop-system/vmop-controller does, with --allow-emulation: emulation allowed, KVM not required\n", "Note: the profile's status counts 3 eligible node(s)")
	if strings.Contains(out, "Needs: an agent reporting; schedulable; KVM;") {
		t.Errorf("--allow-emulation still needs KVM:\n%s", out)
	}
	code, _, errOut = run(t, testCluster, Env{}, "why", "nothing", "-n", "demo")
	if code != ExitProblems || !strings.Contains(errOut, "VirtualMachineProfile demo/nothing not found") {
		t.Errorf("missing profile: exit %d, %q", code, errOut)
	}
}

// TestConsoleHandsOverToVirtctl: console, vnc and ssh exec virtctl on the
// VM's name, not the profile's; without virtctl they say how to get it.
func TestConsoleHandsOverToVirtctl(t *testing.T) {
	setUp(t, testCluster)
	var got []string
	env := Env{
		LookPath: func(file string) (string, error) {
			if file == "virtctl" {
				return "/opt/bin/virtctl", nil
			}
			return "", exec.ErrNotFound
		},
		Exec: func(path string, argv, _ []string) error { got = append([]string{path}, argv...); return nil },
	}
	for verb, want := range map[string]string{
		"console": "/opt/bin/virtctl virtctl console test-vm-vm --namespace demo --kubeconfig " + testCluster.Kubeconfig,
		"vnc":     "/opt/bin/virtctl virtctl vnc test-vm-vm --namespace demo --kubeconfig " + testCluster.Kubeconfig,
	} {
		got = nil
		if code, out, errOut := run(t, testCluster, env, verb, "test-vm", "-n", "demo"); code != ExitOK {
			t.Fatalf("%s: exit %d: %s%s", verb, code, out, errOut)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s ran %q, want %q", verb, strings.Join(got, " "), want)
		}
	}
	got = nil
	run(t, testCluster, env, "ssh", "centos@test-vm", "-n", "demo", "--", "-i", "key")
	if want := "/opt/bin/virtctl virtctl ssh centos@vm/test-vm-vm --namespace demo --kubeconfig " + testCluster.Kubeconfig + " -i key"; strings.Join(got, " ") != want {
		t.Errorf("ssh ran %q, want %q", strings.Join(got, " "), want)
	}
	code, _, errOut := run(t, testCluster, Env{Exec: func(string, []string, []string) error { return errors.New("must not run") }}, "console", "test-vm", "-n", "demo")
	if code != ExitProblems {
		t.Errorf("without virtctl: exit %d", code)
	}
	mustContain(t, errOut, "virtctl not found in PATH. The VM of profile test-vm is test-vm-vm.", "kubectl krew install virt",
		"kubectl virt console test-vm-vm -n demo", "https://github.com/kubevirt/kubevirt/releases")
}

// TestDoctorOnAFullControlPlane: every dependency is served; doctor finds
// the controller without a ready replica, node-2's fresh agent, node-3's
// missing one, a HostNetwork not Ready, the chart's policies missing
// under a chart's controller, and our CRDs current.
func TestDoctorOnAFullControlPlane(t *testing.T) {
	setUp(t, testCluster)
	ctx := context.Background()
	ready := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-lan"}}
	pending := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "wan"}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-wan"}}
	create(t, testCluster.Client, ready, pending)
	meta.SetStatusCondition(&ready.Status.Conditions, metav1.Condition{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ok"})
	meta.SetStatusCondition(&pending.Status.Conditions, metav1.Condition{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "NotOffered", Message: "no node offers br-wan"})
	for _, h := range []*vmv1alpha1.HostNetwork{ready, pending} {
		if err := testCluster.Client.Status().Update(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = testCluster.Client.Delete(ctx, ready)
		_ = testCluster.Client.Delete(ctx, pending)
	})
	code, out, errOut := run(t, testCluster, Env{}, "doctor")
	if code != ExitProblems {
		t.Fatalf("exit %d, want %d: %s%s", code, ExitProblems, out, errOut)
	}
	if errOut != "" {
		t.Fatalf("doctor wrote to stderr: %s", errOut)
	}
	t.Logf("kubectl vmprofile doctor:\n%s", out)
	mustContain(t, out,
		"  ok    KubeVirt installed, version unknown (no KubeVirt resource)\n",
		"  ok    CDI installed, version unknown (no CDI resource)\n",
		"  ok    Multus installed, version unknown (no multus DaemonSet found)\n",
		"  ok    nmstate installed, version unknown (no nmstate-handler DaemonSet found)\n",
		"  WARN  the NMState kind is not served",
		"  FAIL  controller vmop-system/vmop-controller has no ready replica\n        fix: kubectl -n vmop-system describe deployment vmop-controller",
		"  ok    node-1: agent Lease renewed ",
		"  FAIL  node-3: no agent has reported (no NodeCapability, no Lease)\n        fix: run vmop-agent there",
		"  ok    lan: Ready\n",
		"  FAIL  wan: not Ready (NotOffered): no node offers br-wan\n        fix: kubectl describe hostnetwork wan",
		"  FAIL  policy *-agent-own-node missing",
		"  ok    none intercepts vm.example.com",
		"  ok    virtualmachineprofiles.vm.example.com current\n",
	)

	// The chart's policies installed: in effect, with their actions.
	if err := testCluster.InstallChartPolicies(ctx, "vmop-system"); err != nil {
		t.Fatal(err)
	}
	_, out, _ = run(t, testCluster, Env{}, "doctor")
	mustContain(t, out, "  ok    vmop-agent-own-node in effect (Deny)\n", "  ok    vmop-controller-owned-objects in effect (Deny)\n")

	// A CRD from another version: its printer columns differ.
	scheme := controlplane.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(testCluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := admin.Get(ctx, client.ObjectKey{Name: "hostnetworks.vm.example.com"}, crd); err != nil {
		t.Fatal(err)
	}
	original := crd.Spec.Versions[0].AdditionalPrinterColumns
	crd.Spec.Versions[0].AdditionalPrinterColumns = original[:len(original)-1]
	if err := admin.Update(ctx, crd); err != nil {
		t.Fatal(err)
	}
	_, out, _ = run(t, testCluster, Env{}, "doctor")
	mustContain(t, out, "  FAIL  hostnetworks.vm.example.com differs from kubectl-vmprofile", "'s: version v1alpha1's printer columns\n        fix: helm upgrade the release")
	if err := admin.Get(ctx, client.ObjectKey{Name: "hostnetworks.vm.example.com"}, crd); err != nil {
		t.Fatal(err)
	}
	crd.Spec.Versions[0].AdditionalPrinterColumns = original
	if err := admin.Update(ctx, crd); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorNamesMissingMultusAndNMState: on a control plane without
// Multus and nmstate, doctor names both, with how to install them, and
// why still explains (undeclared networks need no NAD to be judged), also
// for a controller run outside the cluster.
func TestDoctorNamesMissingMultusAndNMState(t *testing.T) {
	cp, err := controlplane.Start(controlplane.WithoutCRDs("k8s.cni.cncf.io_", "nmstate.io_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	setUp(t, cp)
	managed := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "bonded"}, Spec: vmv1alpha1.HostNetworkSpec{
		Type: "bridge", BridgeName: "br-bond", Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth2"}}}}
	create(t, cp.Client, managed)
	code, out, errOut := run(t, cp, Env{}, "doctor")
	if code != ExitProblems {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	t.Logf("kubectl vmprofile doctor without Multus and nmstate:\n%s", out)
	mustContain(t, out,
		"  FAIL  Multus missing: NetworkAttachmentDefinition (k8s.cni.cncf.io/v1) is not served; needed by every profile's networks\n"+
			"        fix: kubectl apply -f https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/$MULTUS_VERSION/deployments/multus-daemonset-thick.yml (docs/install.md)\n",
		"  FAIL  nmstate missing: NodeNetworkConfigurationPolicy (nmstate.io/v1) is not served; needed by 1 managed HostNetwork(s)\n"+
			"        fix: install kubernetes-nmstate's operator and create an NMState resource (docs/install.md)\n",
		"  ok    skipped: nmstate is not installed\n",
		"  ok    KubeVirt installed",
	)
	code, out, _ = run(t, cp, Env{}, "why", "test-vm", "-n", "demo")
	if code != ExitOK {
		t.Fatalf("why without Multus: exit %d:\n%s", code, out)
	}
	mustContain(t, out, "1 of 3 node(s) can host the VM.")

	// A controller run outside the cluster (make dev) shows no flags: its
	// defaults refuse the undeclared bridge, so the user passes that flag.
	// With node-2 offering VLAN 100 but no KVM, and the profile's status
	// counting 2 eligible nodes, why infers the controller emulates.
	ctx := context.Background()
	if err := cp.Client.Delete(ctx, controllerDeployment()); err != nil {
		t.Fatal(err)
	}
	nc := &vmv1alpha1.NodeCapability{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "node-2"}, nc); err != nil {
		t.Fatal(err)
	}
	nc.Status = *bridgeCapability("100")
	nc.Status.KVM = &vmv1alpha1.KVMStatus{Reason: "/dev/kvm: no such device"}
	if err := cp.Client.Status().Update(ctx, nc); err != nil {
		t.Fatal(err)
	}
	_, out, _ = run(t, cp, Env{}, "why", "test-vm", "-n", "demo")
	mustContain(t, out, "Network mgmt cannot attach (HostNetworkNotDeclared): network mgmt: no HostNetwork of type bridge declares bridge br-mgmt",
		"No node is judged until every network resolves.")
	_, out, _ = run(t, cp, Env{}, "why", "test-vm", "-n", "demo", "--allow-undeclared-host-networks")
	mustContain(t, out, "No controller Deployment found: judged with the controller's defaults: KVM required\n",
		"  node-2: excluded: KVM unavailable: /dev/kvm: no such device\n      fix: give node-2 KVM")
	profile := &vmv1alpha1.VirtualMachineProfile{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "test-vm"}, profile); err != nil {
		t.Fatal(err)
	}
	profile.Status.Placement = &vmv1alpha1.PlacementStatus{EligibleNodes: 2, ExcludedNodes: 1}
	if err := cp.Client.Status().Update(ctx, profile); err != nil {
		t.Fatal(err)
	}
	_, out, _ = run(t, cp, Env{}, "why", "test-vm", "-n", "demo", "--allow-undeclared-host-networks")
	mustContain(t, out, "No controller Deployment found: judged with the controller's defaults, with emulation inferred from the profile's status "+
		"(2 eligible, as with --allow-emulation): emulation allowed, KVM not required\n", "2 of 3 node(s) can host the VM.\n", "  node-2: eligible\n")
	if strings.Contains(out, "Note:") {
		t.Errorf("the inferred judgement still disagrees with the status:\n%s", out)
	}
}

// TestWideColumnsAndThePluginThroughKubectl: kubectl finds the built
// kubectl-vmprofile on PATH and runs it, and kubectl get -o wide shows
// the VM, addresses and placement columns the CRD declares.
func TestWideColumnsAndThePluginThroughKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not installed; the test runs the plugin through it")
	}
	setUp(t, testCluster)
	ctx := context.Background()
	profile := &vmv1alpha1.VirtualMachineProfile{}
	if err := testCluster.Client.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "test-vm"}, profile); err != nil {
		t.Fatal(err)
	}
	profile.Status = vmv1alpha1.VirtualMachineProfileStatus{Phase: vmv1alpha1.PhaseRunning, VMName: "test-vm-vm", NodeName: "node-1",
		Addresses: "192.168.100.10/24,10.0.0.7/16",
		Networks:  []vmv1alpha1.NetworkStatus{{Name: "mgmt", IPAddress: "192.168.100.10/24"}},
		Placement: &vmv1alpha1.PlacementStatus{EligibleNodes: 1, ExcludedNodes: 2}}
	if err := testCluster.Client.Status().Update(ctx, profile); err != nil {
		t.Fatal(err)
	}
	kubectlOut := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", testCluster.Kubeconfig, "--cache-dir", t.TempDir()}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	narrow := strings.Fields(strings.Split(kubectlOut("get", "vmprofile", "-n", "demo"), "\n")[0])
	if strings.Join(narrow, " ") != "NAME PHASE VM NODE IP READY AGE" {
		t.Errorf("default columns: %v", narrow)
	}
	wide := strings.Split(kubectlOut("get", "vmprofile", "-n", "demo", "-o", "wide"), "\n")
	if got := strings.Join(strings.Fields(wide[0]), " "); got != "NAME PHASE VM NODE IP READY AGE ADDRESSES ELIGIBLE EXCLUDED" {
		t.Errorf("wide columns: %s", got)
	}
	row := strings.Fields(wide[1])
	if len(row) != 9 || row[0] != "test-vm" || row[2] != "test-vm-vm" || row[3] != "node-1" || row[4] != "192.168.100.10/24" ||
		row[6] != "192.168.100.10/24,10.0.0.7/16" || row[7] != "1" || row[8] != "2" {
		t.Errorf("wide row: %q", wide[1])
	}

	describe := kubectlOut("describe", "vmprofile", "test-vm", "-n", "demo")
	mustContain(t, describe, "Vm Name:", "test-vm-vm", "Addresses:", "192.168.100.10/24,10.0.0.7/16")

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-vmprofile"), "../../cmd/kubectl-vmprofile")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(kubectl, "vmprofile", "why", "test-vm", "-n", "demo", "--kubeconfig", testCluster.Kubeconfig)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl vmprofile why: %v\n%s", err, out)
	}
	mustContain(t, string(out), "VirtualMachineProfile demo/test-vm: VM test-vm-vm (phase Running, on node node-1)\n", "  node-2: excluded: VLAN 100 not allowed")
}
