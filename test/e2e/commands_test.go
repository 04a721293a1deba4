//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// shellIn runs command, verbatim, in bash from the repository root (the
// request's paths are relative to it; its commands have quotes and pipes),
// against the environment through kubeconfig: the request's commands name
// no namespace, so the kubeconfig's context says which.
func shellIn(t *testing.T, kubeconfig, command string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", command)
	cmd.Dir = controlplane.RepoRoot()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "KUBECACHEDIR="+filepath.Join(t.TempDir(), "cache"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// namespacedKubeconfig is a copy of the environment's kubeconfig whose
// context defaults to namespace, so that the request's commands, verbatim,
// act in this test's namespace and not in default, where other scenarios
// run.
func namespacedKubeconfig(t *testing.T, namespace string) string {
	t.Helper()
	raw, err := os.ReadFile(env.ControlPlane.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := shellIn(t, path, "kubectl config set-context --current --namespace="+namespace); err != nil {
		t.Fatalf("kubectl config set-context: %v\n%s", err, out)
	}
	return path
}

// TestRequestCommands runs the commands of the original request's sections
// 集成测试 (验证流程) and 故障排查 verbatim on the environment of make dev,
// in the order a user types them, and checks what each prints. Those that
// need the chart's pods (kubectl logs/get pods -n vmoperator-system, the
// roles) run in test/maketargets' TestDeployUndeploy, the image commands in
// TestDockerTargetsBuildAndPushIMG, the events order in controller/manager's
// TestEventsSortByLastTimestamp.
func TestRequestCommands(t *testing.T) {
	ns := newNamespace(t)
	kubeconfig := namespacedKubeconfig(t, ns)
	// run runs one command, fails the test when it fails, and checks its
	// output holds every one of want (regular expressions).
	run := func(command string, want ...string) string {
		t.Helper()
		out, err := shellIn(t, kubeconfig, command)
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Errorf("%s printed:\n%s\nwant a match of %q", command, out, w)
			}
		}
		t.Logf("$ %s\n%s", command, out)
		return out
	}
	// fails runs one command that must fail, and checks its output.
	fails := func(command string, want ...string) {
		t.Helper()
		out, err := shellIn(t, kubeconfig, command)
		if err == nil {
			t.Errorf("%s succeeded, want it to fail:\n%s", command, out)
		}
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Errorf("%s printed:\n%s\nwant a match of %q", command, out, w)
			}
		}
		t.Logf("$ %s\n%s", command, out)
	}
	// eventually reruns command until its output holds every one of want.
	eventually := func(command string, want ...string) {
		t.Helper()
		observe.Eventually(t, 2*time.Minute, command, func() (bool, string) {
			out, err := shellIn(t, kubeconfig, command)
			if err != nil {
				return false, err.Error() + ": " + out
			}
			for _, w := range want {
				if !regexp.MustCompile(w).MatchString(out) {
					return false, out
				}
			}
			return true, ""
		})
		run(command, want...)
	}

	// 1. 创建资源: the test VM and its HostNetwork, which make dev declares
	// from the same file.
	run("kubectl apply -f config/samples/",
		`hostnetwork.vm.example.com/mgmt unchanged`, `virtualmachineprofile.vm.example.com/test-vm created`)
	// 2. 检查状态
	eventually("kubectl get vmprofile test-vm -o yaml", `(?m)^  phase: Running$`, `(?m)^  nodeName: node-a$`)
	// 3. 检查 NAD. Multus' CRD is network-attachment-definitions, singular
	// network-attachment-definition (short names nad, net-attach-def): the
	// request's unhyphenated name matches none, on any cluster with Multus.
	// docs/operations.md gives the forms that work.
	fails("kubectl get networkattachmentdefinition", `the server doesn't have a resource type "networkattachmentdefinition"`)
	run("kubectl get network-attachment-definitions", `(?m)^test-vm-mgmt\s`)
	// 4. 检查 PVC
	eventually("kubectl get pvc", `(?m)^test-vm-system\s+Bound\s`)
	// 5. 检查 VM
	run("kubectl get virtualmachine", `(?m)^test-vm\S*\s`)
	// The test CRDs carry no printer columns of KubeVirt's (NAME and AGE
	// only, docs/fidelity.md): describe shows the phase.
	eventually("kubectl get virtualmachineinstance", `(?m)^test-vm\S*\s`)
	// 6. 检查 VM 状态
	eventually("kubectl describe vmprofile test-vm", `(?m)^Name:\s+test-vm$`, `Phase:\s+Running`, `node-b`, `node-c`)

	// 故障排查 1: VM 无法启动.
	vmis := run("kubectl get vmi", `(?m)^test-vm\S*\s`)
	vmi := strings.Fields(strings.Split(strings.TrimSpace(vmis), "\n")[1])[0]
	eventually("kubectl describe vmi "+vmi, `(?m)^Name:\s+`+vmi+`$`, `Phase:\s+Running`, `node-a`)
	// A refusal gives our Warning event: a second profile claiming the test
	// VM's address, as the request's full example does.
	clash := observe.Sample(t, "vm_v1alpha1_virtualmachineprofile.yaml", ns)
	clash.Name = "clash"
	create(t, clash)
	observe.Eventually(t, time.Minute, "clash refused", func() (bool, string) {
		described := observe.Describe(get(t, ns, "clash"))
		return strings.Contains(described, vmv1alpha1.ReasonStaticIPConflict), described
	})
	events := ""
	observe.Eventually(t, time.Minute, "the StaticIPConflict event", func() (bool, string) {
		events, _ = shellIn(t, kubeconfig, "kubectl get events --sort-by='.lastTimestamp'")
		return strings.Contains(events, "virtualmachineprofile/clash"), events
	})
	events = run("kubectl get events --sort-by='.lastTimestamp'", `virtualmachineprofile/clash`, vmv1alpha1.ReasonStaticIPConflict)
	checkEventsCarryTimes(t, events)
	run("kubectl get events -A --sort-by='.lastTimestamp'", ns+`\s.*`+vmv1alpha1.ReasonStaticIPConflict)

	// 故障排查 2: 网络配置失败.
	run("kubectl get nad", `(?m)^test-vm-mgmt\s`)
	run("kubectl describe nad test-vm-mgmt", `"vlan":\s*100`, `br-mgmt`)
	run("kubectl get nncp", `(?m)^vmop-mgmt\s`)
	run("kubectl describe nncp vmop-mgmt", `br-mgmt`, `eth1`)
	// nmstate's NodeNetworkStates: the stand-in of make dev writes none;
	// the agent's NodeCapability says what the node has (docs/operations.md).
	run("kubectl get nns", `No resources found`)
	run("kubectl get nodecap", `node-a`, `node-b`, `node-c`)

	// 故障排查 3: 存储绑定失败.
	run("kubectl get pvc", `(?m)^test-vm-system\s+Bound\s`)
	run("kubectl describe pvc test-vm-system", `StorageClass:\s+huamei-sc-ssd`, `Status:\s+Bound`)
	run("kubectl get storageclass", `huamei-sc-ssd`)
	run("kubectl describe storageclass huamei-sc-ssd", `Provisioner:\s+huamei.example.com/csi`)
	// The simulator binds claims without volumes (docs/fidelity.md).
	run("kubectl get pv", `No resources found`)

	// 部署指南 4. 验证: the CRD (the pods are the chart's: TestDeployUndeploy).
	run("kubectl get crd | grep virtualmachineprofile", `(?m)^virtualmachineprofiles\.vm\.example\.com\s`)

	// The profiles go (the HostNetwork is the environment's), so the next
	// scenarios find node-a free.
	run("kubectl delete vmprofile test-vm clash", `deleted`)
}

// checkEventsCarryTimes: in kubectl get events' default columns, each row
// of our events has a LAST SEEN age, not <unknown>, and the rows are in
// ascending lastTimestamp (kubectl prints ages, so a later row is no older).
func checkEventsCarryTimes(t *testing.T, out string) {
	t.Helper()
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) < 2 || !strings.HasPrefix(rows[0], "LAST SEEN") {
		t.Fatalf("kubectl get events printed:\n%s", out)
	}
	var last time.Duration = 1 << 62
	for _, row := range rows[1:] {
		if !strings.Contains(row, "virtualmachineprofile/") {
			continue // not ours
		}
		age := strings.Fields(row)[0]
		if age == "<unknown>" {
			t.Errorf("an event without a time: %s", row)
			continue
		}
		d, err := parseAge(age)
		if err != nil {
			t.Errorf("LAST SEEN %q: %v", age, err)
			continue
		}
		if d > last+time.Second {
			t.Errorf("events not in order of lastTimestamp at %q:\n%s", row, out)
		}
		last = d
	}
}

// parseAge reads kubectl's short durations (12s, 3m4s, 2m, 1h5m...).
func parseAge(age string) (time.Duration, error) {
	d, err := time.ParseDuration(age)
	if err == nil {
		return d, nil
	}
	if strings.HasSuffix(age, "d") {
		var days int
		if _, err := fmt.Sscanf(age, "%dd", &days); err == nil {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	return 0, fmt.Errorf("not an age: %w", err)
}

// TestSamplesRunOrSayWhatTheyNeed: every file of deploy/samples says in its
// first line whether it runs on make dev ("# On `make dev`: runs...") or
// what it needs ("# Needs what `make dev` lacks: ..."), and each that says
// it runs does: applied with kubectl into a namespace of its own, its
// profiles reach Running (Stopped with autoStart: false). seed-web-vm-01.yaml
// names the namespace default, where other scenarios run: it runs in
// TestSeedExamplesArePlacedOnlyWhereTheyCanRun. The files that need more are
// not applied: their HostNetworks would change the environment.
func TestSamplesRunOrSayWhatTheyNeed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "deploy", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy/samples: %v %v", files, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(raw), "\n")
		switch {
		case strings.HasPrefix(first, "# Needs what `make dev` lacks: "):
			continue
		case !strings.HasPrefix(first, "# On `make dev`: runs"):
			t.Errorf("%s begins with %q: neither whether it runs on make dev nor what it needs", name, first)
			continue
		case strings.Contains(string(raw), "\n  namespace: "):
			continue
		}
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			ns := newNamespace(t)
			out, err := shellIn(t, namespacedKubeconfig(t, ns), "kubectl apply -f deploy/samples/"+name)
			if err != nil {
				t.Fatalf("kubectl apply -f deploy/samples/%s: %v\n%s", name, err, out)
			}
			var profiles vmv1alpha1.VirtualMachineProfileList
			if err := c().List(context.Background(), &profiles, client.InNamespace(ns)); err != nil || len(profiles.Items) == 0 {
				t.Fatalf("%s made no profile in %s: %v", name, ns, err)
			}
			for _, p := range profiles.Items {
				want := vmv1alpha1.PhaseRunning
				if s := p.Spec.StartStrategy; s != nil && s.AutoStart != nil && !*s.AutoStart {
					want = vmv1alpha1.PhaseStopped
				}
				got := waitForPhase(t, ns, p.Name, want)
				t.Logf("%s: %s %s on %q", name, p.Name, got.Status.Phase, got.Status.NodeName)
			}
		})
	}
}
