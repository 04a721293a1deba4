package chart

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// isHook says whether Helm runs obj as a hook rather than installing it.
func isHook(obj *unstructured.Unstructured) bool {
	return obj.GetAnnotations()["helm.sh/hook"] != ""
}

// helmFails runs helm expecting it to fail, and returns its error output.
func helmFails(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(controlplane.BinDir(), "helm"), args...)
	cmd.Dir = controlplane.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("helm %s succeeded, want it refused", strings.Join(args, " "))
	}
	return string(out)
}

// TestValuesSchemaRejectsTypos: a misspelt key or a bad value fails the
// install, naming it, instead of being silently ignored.
func TestValuesSchemaRejectsTypos(t *testing.T) {
	for set, want := range map[string]string{
		"controler.replicas=1":                    "additional properties 'controler' not allowed",
		"agent.logLevl=debug":                     "additional properties 'logLevl' not allowed",
		"agent.logLevel=verbose":                  "/agent/logLevel",
		"agent.leaseDuration=forty":               "/agent/leaseDuration",
		"controller.metricsPort=0":                "/controller/metricsPort",
		"image.pullPolicy=Sometimes":              "/image/pullPolicy",
		"priorityClass.value=2000000001":          "/priorityClass/value",
		"controller.capabilityWakeInterval=often": "/controller/capabilityWakeInterval",
	} {
		out := helmFails(t, "template", "vmop", "deploy/chart", "--kube-version", "1.37.2", "--set", set)
		if !strings.Contains(out, want) {
			t.Errorf("--set %s: error does not name %q:\n%s", set, want, out)
		}
	}
}

// podSpecs are the pod templates of the Deployment, DaemonSet and Jobs.
func podSpecs(t *testing.T, objects []*unstructured.Unstructured) map[string]corev1.PodSpec {
	t.Helper()
	specs := map[string]corev1.PodSpec{}
	for _, obj := range objects {
		switch obj.GetKind() {
		case "Deployment", "DaemonSet", "Job":
			var workload struct {
				Spec struct {
					Template corev1.PodTemplateSpec `json:"template"`
				} `json:"spec"`
			}
			if err := runtimeConvert(obj, &workload); err != nil {
				t.Fatal(err)
			}
			specs[obj.GetKind()+"/"+obj.GetName()] = workload.Spec.Template.Spec
		}
	}
	return specs
}

func TestPriorityClassAndPullSecrets(t *testing.T) {
	priorities := func(objects []*unstructured.Unstructured) (classes []string, used map[string]string) {
		used = map[string]string{}
		for _, obj := range objects {
			if obj.GetKind() == "PriorityClass" {
				classes = append(classes, obj.GetName())
			}
		}
		for name, spec := range podSpecs(t, objects) {
			used[name] = spec.PriorityClassName
		}
		return classes, used
	}
	classes, used := priorities(render(t))
	if len(classes) != 1 || classes[0] != "vmop-critical-nonpreempting" {
		t.Fatalf("default PriorityClasses %v, want the chart's vmop-critical-nonpreempting", classes)
	}
	if len(used) != 4 {
		t.Fatalf("pod templates %v, want the controller, the agent and two hooks", used)
	}
	for name, class := range used {
		// Hooks run before the class exists (pre-install) or after it is
		// gone (post-delete): the Priority admission plugin would refuse
		// their Pods.
		want := "vmop-critical-nonpreempting"
		if strings.HasPrefix(name, "Job/") {
			want = ""
		}
		if class != want {
			t.Errorf("%s runs at %q, want %q", name, class, want)
		}
	}
	classes, used = priorities(render(t, "priorityClass.create=false", "priorityClass.name=platform-high"))
	if len(classes) != 0 || used["DaemonSet/vmop-agent"] != "platform-high" {
		t.Errorf("an existing class: created %v, agent runs at %q", classes, used["DaemonSet/vmop-agent"])
	}
	_, used = priorities(render(t, "priorityClass.create=false"))
	if used["Deployment/vmop-controller-manager"] != "" {
		t.Errorf("no class wanted, controller runs at %q", used["Deployment/vmop-controller-manager"])
	}
	for name, spec := range podSpecs(t, render(t, "image.pullSecrets={regcred}")) {
		if len(spec.ImagePullSecrets) != 1 || spec.ImagePullSecrets[0].Name != "regcred" {
			t.Errorf("%s pull secrets %v", name, spec.ImagePullSecrets)
		}
	}
}

func TestExtraArgsEnvAndPodDisruptionBudget(t *testing.T) {
	objects := render(t, "controller.extraArgs={--kube-api-qps=50}", "controller.extraEnv[0].name=GOMEMLIMIT", "controller.extraEnv[0].value=200MiB",
		"agent.extraArgs={--debounce=1s}", "controller.replicas=1")
	specs := podSpecs(t, objects)
	controller := specs["Deployment/vmop-controller-manager"].Containers[0]
	// extraEnv follows the chart's own POD_IP (the metrics bind address).
	if !strings.Contains(strings.Join(controller.Args, " "), "--kube-api-qps=50") || len(controller.Env) != 2 ||
		controller.Env[0].Name != "POD_IP" || controller.Env[1].Name != "GOMEMLIMIT" || controller.Env[1].Value != "200MiB" {
		t.Errorf("controller args %v env %v", controller.Args, controller.Env)
	}
	if agent := specs["DaemonSet/vmop-agent"].Containers[0]; !strings.Contains(strings.Join(agent.Args, " "), "--debounce=1s") {
		t.Errorf("agent args %v", agent.Args)
	}
	for _, obj := range objects {
		if obj.GetKind() == "PodDisruptionBudget" {
			t.Error("a single replica got a PodDisruptionBudget, which would block every drain")
		}
	}
}

// TestPodSecurityLevels creates Pods from the rendered templates on a real
// apiserver whose PodSecurity admission enforces a level per namespace:
// the agent needs "privileged" (host network, a hostPath), the controller
// and the hooks pass "restricted".
func TestPodSecurityLevels(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	objects := render(t)
	for _, obj := range objects {
		if obj.GetKind() == "PriorityClass" {
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, level := range []string{"privileged", "baseline", "restricted"} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "psa-" + level,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": level}}}
		if err := cp.Client.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	admitted := func(level, name string, spec corev1.PodSpec) error {
		spec.NodeName = "node-a" // no scheduler here; the Pod only needs admitting
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower(strings.ReplaceAll(name, "/", "-")), Namespace: "psa-" + level}, Spec: spec}
		return cp.Client.Create(ctx, pod)
	}
	for name, spec := range podSpecs(t, objects) {
		for _, level := range []string{"privileged", "baseline", "restricted"} {
			err := admitted(level, name, spec)
			wantAdmitted := level == "privileged" || !strings.HasPrefix(name, "DaemonSet/")
			switch {
			case wantAdmitted && err != nil:
				t.Errorf("%s refused at level %s: %v", name, level, err)
			case !wantAdmitted && err == nil:
				t.Errorf("%s admitted at level %s", name, level)
			case !wantAdmitted:
				if !strings.Contains(err.Error(), "host namespaces") || !strings.Contains(err.Error(), "hostPath") {
					t.Errorf("%s at %s refused for another reason: %v", name, level, err)
				}
				t.Logf("%s at %s: %v", name, level, err)
			}
		}
	}
}

// TestAgentHostAccess: the agent's pod holds no writable host mount (each
// hostPath is read-only and recursively so, and none is /sys as a whole,
// whose fs/ holds cgroupfs and bpffs), takes no device unit (KVM comes
// from sysfs), tolerates no taint wholesale, runs as root only for the
// eBPF counters, and its PriorityClass never preempts a VM's pod.
func TestAgentHostAccess(t *testing.T) {
	agentSpec := func(objects []*unstructured.Unstructured) corev1.PodSpec {
		spec, ok := podSpecs(t, objects)["DaemonSet/vmop-agent"]
		if !ok {
			t.Fatal("no agent DaemonSet rendered")
		}
		return spec
	}
	defaults := render(t)
	spec := agentSpec(defaults)
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	if len(hostPaths) == 0 {
		t.Fatal("the agent mounts no host path; it reads sysfs through one")
	}
	container := spec.Containers[0]
	for _, m := range container.VolumeMounts {
		path, ok := hostPaths[m.Name]
		if !ok {
			continue
		}
		rro := m.RecursiveReadOnly
		if !m.ReadOnly || rro == nil || *rro == corev1.RecursiveReadOnlyDisabled {
			t.Errorf("host path %s at %s: readOnly %v, recursiveReadOnly %v; want both", path, m.MountPath, m.ReadOnly, rro)
		}
		if path == "/sys" || path == "/" || strings.HasPrefix(path, "/sys/fs") || strings.HasPrefix(path, "/sys/kernel") {
			t.Errorf("host path %s holds cgroupfs, bpffs or debugfs; mount only what the agent reads", path)
		}
	}
	for _, list := range []corev1.ResourceList{container.Resources.Requests, container.Resources.Limits} {
		for name := range list {
			if strings.HasPrefix(string(name), "devices.kubevirt.io/") {
				t.Errorf("the agent requests %s: it would compete with VMs for device units", name)
			}
		}
	}
	if args := strings.Join(container.Args, " "); !strings.Contains(args, "--kvm-device= ") && !strings.HasSuffix(args, "--kvm-device=") {
		t.Errorf("the agent should open no KVM device (--kvm-device=): %s", args)
	}
	for _, toleration := range spec.Tolerations {
		if toleration.Key == "" && toleration.Operator == corev1.TolerationOpExists {
			t.Errorf("the agent tolerates every taint: %+v", toleration)
		}
	}
	preemption := ""
	for _, obj := range defaults {
		if obj.GetKind() == "PriorityClass" {
			preemption, _, _ = unstructured.NestedString(obj.Object, "preemptionPolicy")
		}
	}
	if preemption != "Never" {
		t.Errorf("the PriorityClass's preemptionPolicy is %q, want Never", preemption)
	}

	// Root only for the counters, whose capabilities a non-root process
	// would lose at execve.
	sc := container.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"BPF", "NET_ADMIN"}) {
		t.Errorf("with vlanCounters: security context %+v, want uid 0 with BPF and NET_ADMIN", sc)
	}
	sc = agentSpec(render(t, "agent.vlanCounters=false")).Containers[0].SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		(sc.Capabilities != nil && len(sc.Capabilities.Add) > 0) {
		t.Errorf("without vlanCounters: security context %+v, want non-root without capabilities", sc)
	}
}

// TestCapabilityWakeInterval: the controller gets --capability-wake-interval
// from its value (5s unless set); TestValuesSchemaRejectsTypos refuses a
// value that is not a duration.
func TestCapabilityWakeInterval(t *testing.T) {
	for set, want := range map[string]string{"": "--capability-wake-interval=5s", "controller.capabilityWakeInterval=30s": "--capability-wake-interval=30s"} {
		var sets []string
		if set != "" {
			sets = append(sets, set)
		}
		controller := podSpecs(t, render(t, sets...))["Deployment/vmop-controller-manager"].Containers[0]
		if !slices.Contains(controller.Args, want) {
			t.Errorf("with %q: controller args %v, want %s", set, controller.Args, want)
		}
	}
}

// TestKubebuilderNames: release vmoperator (what make deploy installs), or
// any release with fullnameOverride=vmoperator, names the Deployment
// vmoperator-controller-manager and the DaemonSet vmoperator-agent, and
// every ClusterRole and binding carries vmoperator, so the original request's
// `kubectl logs deployment/vmoperator-controller-manager` and
// `kubectl get clusterrole,clusterrolebinding | grep vmoperator` find them.
// image.controller and image.agent, whole references, win over registry
// and tag.
func TestKubebuilderNames(t *testing.T) {
	sets := []string{"image.controller=registry.example.com/vmoperator:v1.0.0", "image.agent=registry.example.com/vmoperator-agent:v1.0.0"}
	for _, release := range []string{"vmoperator", "other"} {
		args := []string{"template", release, "deploy/chart", "--kube-version", "1.37.2", "--namespace", "vmoperator-system"}
		if release != "vmoperator" {
			args = append(args, "--set", "fullnameOverride=vmoperator")
		}
		for _, set := range sets {
			args = append(args, "--set", set)
		}
		objects := decodeAll(t, helm(t, args...))
		specs := podSpecs(t, objects)
		controller, ok := specs["Deployment/vmoperator-controller-manager"]
		if !ok {
			t.Fatalf("release %s: no Deployment vmoperator-controller-manager among %v", release, keys(specs))
		}
		agent, ok := specs["DaemonSet/vmoperator-agent"]
		if !ok {
			t.Fatalf("release %s: no DaemonSet vmoperator-agent among %v", release, keys(specs))
		}
		if got := controller.Containers[0].Image; got != "registry.example.com/vmoperator:v1.0.0" {
			t.Errorf("release %s: controller image %s", release, got)
		}
		if got := agent.Containers[0].Image; got != "registry.example.com/vmoperator-agent:v1.0.0" {
			t.Errorf("release %s: agent image %s", release, got)
		}
		roles := 0
		for _, obj := range objects {
			if obj.GetKind() == "ClusterRole" || obj.GetKind() == "ClusterRoleBinding" {
				roles++
				if !strings.Contains(obj.GetName(), "vmoperator") {
					t.Errorf("release %s: %s %s lacks vmoperator in its name", release, obj.GetKind(), obj.GetName())
				}
			}
		}
		if roles == 0 {
			t.Errorf("release %s renders no ClusterRole", release)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
