// Package maketargets runs the Makefile's deployment and image targets as a
// user types them: install, run, uninstall, deploy and undeploy against a
// real test control plane reached through KUBECONFIG, and docker-build and
// docker-push where no Docker engine answers. It also checks what the
// Dockerfiles build from: base images pinned by digest, and a .dockerignore
// that leaves in every package the images compile; and that make test
// builds every tool first and make fuzz runs every fuzz target.
package maketargets

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// The Makefile's defaults for deploy and undeploy.
const (
	namespace = "vmoperator-system"
	release   = "vmoperator"
)

// makeCommand is `make TARGET...` in the repository root against the cluster
// of kubeconfig, with kubectl's and helm's caches and settings in a temporary
// folder, so nothing outside the test is read or written.
func makeCommand(t *testing.T, kubeconfig string, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = controlplane.RepoRoot()
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"KUBECACHEDIR="+filepath.Join(home, "kube-cache"),
		"HELM_CACHE_HOME="+filepath.Join(home, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(home, "helm-data"),
	)
	return cmd
}

// runMake runs make to the end and fails the test if it fails.
func runMake(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := makeCommand(t, kubeconfig, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("make %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// eventually polls condition until it holds or a minute has passed.
func eventually(t *testing.T, what string, condition func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := condition()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute (last error: %v)", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ourCRDNames reads the names of the CRDs in deploy/crds.
func ourCRDNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in deploy/crds (%v)", err)
	}
	var names []string
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		names = append(names, crd.Metadata.Name)
	}
	return names
}

// crdState says whether the CRD name exists and is established.
func crdState(c client.Client, name string) (exists, established bool, err error) {
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	err = c.Get(context.Background(), client.ObjectKey{Name: name}, crd)
	if apierrors.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, condition := range conditions {
		c, _ := condition.(map[string]any)
		if c["type"] == "Established" && c["status"] == "True" {
			return true, true, nil
		}
	}
	return true, false, nil
}

// TestInstallRunUninstall starts from a cluster without our CRDs: make
// install establishes them, make run starts the controller from source
// against the kubeconfig, and make uninstall removes them (twice: the second
// finds nothing and still succeeds).
func TestInstallRunUninstall(t *testing.T) {
	cp, err := controlplane.Start(controlplane.WithoutOwnCRDs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	names := ourCRDNames(t)
	for _, name := range names {
		if exists, _, err := crdState(cp.Client, name); exists || err != nil {
			t.Fatalf("CRD %s before make install: exists %v, error %v", name, exists, err)
		}
	}

	runMake(t, cp.Kubeconfig, "install")
	for _, name := range names {
		eventually(t, "CRD "+name+" established", func() (bool, error) {
			_, established, err := crdState(cp.Client, name)
			return established, err
		})
	}

	t.Run("run", func(t *testing.T) { runController(t, cp.Kubeconfig) })

	runMake(t, cp.Kubeconfig, "uninstall")
	for _, name := range names {
		eventually(t, "CRD "+name+" deleted", func() (bool, error) {
			exists, _, err := crdState(cp.Client, name)
			return !exists, err
		})
	}
	runMake(t, cp.Kubeconfig, "uninstall")
}

// TestUninstallRefusesWhileProfilesExist: deleting the CRDs deletes every
// profile, and the garbage collector then deletes each one's VM, so make
// uninstall refuses while a profile exists and names it (the CRDs stay);
// FORCE=1 says what goes and deletes them.
func TestUninstallRefusesWhileProfilesExist(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	profile := &unstructured.Unstructured{}
	profile.SetGroupVersionKind(schema.GroupVersionKind{Group: "vm.example.com", Version: "v1alpha1", Kind: "VirtualMachineProfile"})
	profile.SetNamespace("team-a")
	profile.SetName("web")
	profile.Object["spec"] = map[string]any{"cpu": int64(1), "memory": "1Gi", "osImage": "registry.local/centos-stream:9"}
	if err := cp.Client.Create(ctx, profile); err != nil {
		t.Fatal(err)
	}
	names := ourCRDNames(t)

	out, err := makeCommand(t, cp.Kubeconfig, "uninstall").CombinedOutput()
	t.Logf("make uninstall:\n%s", out)
	if err == nil {
		t.Fatal("make uninstall succeeded with a profile present")
	}
	if !strings.Contains(string(out), "team-a/web") {
		t.Errorf("make uninstall does not name the profile team-a/web")
	}
	for _, name := range names {
		if exists, _, err := crdState(cp.Client, name); !exists || err != nil {
			t.Errorf("CRD %s after a refused make uninstall: exists %v, error %v", name, exists, err)
		}
	}

	forced := runMake(t, cp.Kubeconfig, "uninstall", "FORCE=1")
	for _, said := range []string{"team-a/web", "VM", "Retain disks stay"} {
		if !strings.Contains(forced, said) {
			t.Errorf("make uninstall FORCE=1 does not say %q", said)
		}
	}
	for _, name := range names {
		eventually(t, "CRD "+name+" deleted", func() (bool, error) {
			exists, _, err := crdState(cp.Client, name)
			return !exists, err
		})
	}
}

// freePort is a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runController runs `make run` until the controller answers /readyz and its
// controllers start workers, which they do only once their caches have
// synced from the apiserver of kubeconfig; then stops it as Ctrl-C would.
// The probe port is a free one and metrics are off, so the test collides
// with nothing listening on :8080 or :8081.
func runController(t *testing.T, kubeconfig string) {
	probe := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := makeCommand(t, kubeconfig, "run", "RUN_ARGS=--metrics-bind-address=0 --health-probe-bind-address="+probe)
	// Its own process group: make, go run and the controller stop together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var output lockedBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopGroup(t, cmd, exited)

	// go run compiles first, which takes a while on a busy machine.
	deadline := time.Now().Add(5 * time.Minute)
	for !readyAndWorking(probe, output.String()) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("make run exited early: %v\n%s", err, output.String())
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("make run: not ready with workers started after 5 minutes\n%s", output.String())
		}
	}
	t.Logf("make run: /readyz answers on %s and the controllers started workers", probe)
}

func readyAndWorking(probe, output string) bool {
	if !strings.Contains(output, "Starting workers") {
		return false
	}
	response, err := http.Get("http://" + probe + "/readyz")
	if err != nil {
		return false
	}
	defer response.Body.Close()
	_, _ = io.Copy(io.Discard, response.Body)
	return response.StatusCode == http.StatusOK
}

// stopGroup sends SIGINT to the process group cmd leads, as Ctrl-C in a
// terminal does, and kills it if it has not exited ten seconds later.
func stopGroup(t *testing.T, cmd *exec.Cmd, exited chan error) {
	t.Helper()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Errorf("make run did not stop within 10s of SIGINT")
	}
}

// TestDeployUndeploy runs make deploy twice (install, then upgrade), checks
// the labelled namespace and the release's workloads with the images named
// first by IMG_REGISTRY and VERSION, then by IMG alone (the agent's derived
// from it, as the original request's `make deploy IMG=...` has it), and make
// undeploy twice (the second finds no release and still succeeds). No kubelet
// runs, so no pod starts: what is checked is what Helm and the Makefile hand
// the apiserver. The chart's hook Jobs (CRDs before install and upgrade,
// cleanup after uninstall) would wait for a Pod that never runs, so they are
// skipped with --no-hooks; the test of the chart (test/chart) runs them under
// a kubelet.
func TestDeployUndeploy(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	requireStampedVersion(t, cp)
	ctx := context.Background()

	ns := &corev1.Namespace{}
	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: release + "-controller-manager"}}
	daemonSet := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: release + "-agent"}}
	deployed := func(controllerImage, agentImage string) {
		t.Helper()
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
			t.Fatal(err)
		}
		if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
			t.Errorf("namespace %s: pod-security enforce label %q, want privileged", namespace, got)
		}
		for _, obj := range []client.Object{deployment, daemonSet} {
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Fatal(err)
			}
		}
		checkImage(t, deployment.Spec.Template.Spec, controllerImage)
		checkImage(t, daemonSet.Spec.Template.Spec, agentImage)
	}

	runMake(t, cp.Kubeconfig, "deploy", "IMG_REGISTRY=registry.test/vmop", "VERSION=9.9.9", "HELM_ARGS=--no-hooks")
	deployed("registry.test/vmop/vmop-controller:9.9.9", "registry.test/vmop/vmop-agent:9.9.9")
	runMake(t, cp.Kubeconfig, "deploy", "IMG=registry.example.com/vmoperator:v1.0.0", "HELM_ARGS=--no-hooks")
	deployed("registry.example.com/vmoperator:v1.0.0", "registry.example.com/vmoperator-agent:v1.0.0")
	if revisions := releaseRevisions(t, cp.Client); revisions != 2 {
		t.Errorf("release %s has %d revisions after two deploys, want 2", release, revisions)
	}
	// The original request's checks after make deploy, verbatim. No kubelet
	// runs here, so no pod starts (kubectl get pods -n vmoperator-system
	// and kubectl logs need the chart test's nodes).
	for command, want := range map[string][]string{
		"kubectl get crd | grep virtualmachineprofile": {"virtualmachineprofiles.vm.example.com"},
		"kubectl get clusterrole,clusterrolebinding | grep vmoperator": {
			"clusterrole.rbac.authorization.k8s.io/vmoperator-controller ", "clusterrole.rbac.authorization.k8s.io/vmoperator-agent ",
			"clusterrolebinding.rbac.authorization.k8s.io/vmoperator-controller ", "clusterrolebinding.rbac.authorization.k8s.io/vmoperator-agent ",
			"clusterrole.rbac.authorization.k8s.io/vmoperator-profiles-view "},
		"kubectl get deployment,daemonset -n vmoperator-system": {"deployment.apps/vmoperator-controller-manager ", "daemonset.apps/vmoperator-agent "},
	} {
		cmd := exec.Command("bash", "-o", "pipefail", "-c", command)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig, "KUBECACHEDIR="+filepath.Join(t.TempDir(), "cache"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", command, err, out)
			continue
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s printed:\n%s\nwant a line with %q", command, out, w)
			}
		}
	}

	runMake(t, cp.Kubeconfig, "undeploy", "UNDEPLOY_ARGS=--no-hooks")
	if revisions := releaseRevisions(t, cp.Client); revisions != 0 {
		t.Errorf("release %s has %d revisions after undeploy, want none", release, revisions)
	}
	for _, obj := range []client.Object{deployment, daemonSet} {
		key := client.ObjectKeyFromObject(obj)
		eventually(t, fmt.Sprintf("%T %s deleted", obj, key.Name), func() (bool, error) {
			err := cp.Client.Get(ctx, key, obj)
			return apierrors.IsNotFound(err), err
		})
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		t.Errorf("namespace %s after undeploy: %v (Helm leaves it)", namespace, err)
	}
	runMake(t, cp.Kubeconfig, "undeploy", "UNDEPLOY_ARGS=--no-hooks")
}

// requireStampedVersion fails early, and says what to do, where
// bin/kube-apiserver predates the Makefile stamping its version: helm would
// refuse the chart's kubeVersion against v0.0.0-master.
func requireStampedVersion(t *testing.T, cp *controlplane.ControlPlane) {
	t.Helper()
	info, err := cp.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(info.GitVersion, "v0.0.0") {
		t.Fatalf("bin/kube-apiserver reports %s: it was built before the Makefile stamped its version; "+
			"rebuild it with `rm bin/kube-apiserver bin/kube-controller-manager && make controlplane`", info.GitVersion)
	}
}

func checkImage(t *testing.T, spec corev1.PodSpec, want string) {
	t.Helper()
	if got := spec.Containers[0].Image; got != want {
		t.Errorf("image %s, want %s", got, want)
	}
}

// releaseRevisions counts the Secrets in which Helm keeps the release's
// revisions.
func releaseRevisions(t *testing.T, c client.Client) int {
	t.Helper()
	secrets := &corev1.SecretList{}
	err := c.List(context.Background(), secrets, client.InNamespace(namespace), client.MatchingLabels{"owner": "helm", "name": release})
	if err != nil {
		t.Fatal(err)
	}
	return len(secrets.Items)
}

// dockerEngineAnswers runs what the Makefile runs to decide.
func dockerEngineAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}

// TestDockerTargetsWithoutAnEngineSaySoAndFail: where no Docker engine
// answers, docker-build and docker-push print one line saying so and
// pointing at make images, run no docker command, and exit non-zero.
func TestDockerTargetsWithoutAnEngineSaySoAndFail(t *testing.T) {
	if dockerEngineAnswers() {
		t.Skip("a Docker engine answers here: docker-build would really build")
	}
	for _, target := range []string{"docker-build", "docker-push"} {
		t.Run(target, func(t *testing.T) {
			out, err := makeCommand(t, "", target).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("make %s: want a non-zero exit, got %v\n%s", target, err, out)
			}
			want := target + ": no Docker engine answers ('docker info' failed); 'make images' builds both images as OCI archives without one."
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if lines[0] != want {
				t.Fatalf("make %s printed:\n%s\nwant its first line to be:\n%s", target, out, want)
			}
			if strings.Contains(string(out), "docker build") || strings.Contains(string(out), "docker push") {
				t.Fatalf("make %s ran docker anyway:\n%s", target, out)
			}
			t.Logf("make %s (exit %d):\n%s", target, exit.ExitCode(), out)
		})
	}
}

// TestDockerTargetsBuildAndPushIMG runs the original request's
// `make docker-build IMG=...` and `make docker-push IMG=...` to the end
// against a stand-in for the docker CLI (DOCKER=), which answers `info` and
// records every other command: no engine or registry is reachable here, so
// what is checked is what the Makefile asks of Docker. IMG names the
// controller's image; the agent's is IMG's repository with -agent and IMG's
// tag, or AGENT_IMG where given.
func TestDockerTargetsBuildAndPushIMG(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	standIn := filepath.Join(dir, "docker")
	script := "#!/bin/sh\n[ \"$1\" = info ] && exit 0\necho \"$*\" >> " + calls + "\n"
	if err := os.WriteFile(standIn, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		vars                   []string
		controller, agentImage string
	}{
		{[]string{"IMG=registry.example.com/vmoperator:v1.0.0"}, "registry.example.com/vmoperator:v1.0.0", "registry.example.com/vmoperator-agent:v1.0.0"},
		{[]string{"IMG=localhost:5000/team/vmoperator"}, "localhost:5000/team/vmoperator", "localhost:5000/team/vmoperator-agent"},
		{[]string{"IMG=r.example.com/op:1", "AGENT_IMG=r.example.com/node:2"}, "r.example.com/op:1", "r.example.com/node:2"},
	} {
		if err := os.RemoveAll(calls); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"docker-build", "docker-push"} {
			runMake(t, "", append([]string{target, "DOCKER=" + standIn}, c.vars...)...)
		}
		raw, err := os.ReadFile(calls)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("build -f Dockerfile.controller --build-arg VERSION=%[3]s -t %[1]s .\n"+
			"build -f Dockerfile.agent --build-arg VERSION=%[3]s -t %[2]s .\npush %[1]s\npush %[2]s\n",
			c.controller, c.agentImage, chartAppVersion(t))
		if string(raw) != want {
			t.Errorf("make docker-build docker-push %v ran:\n%s\nwant:\n%s", c.vars, raw, want)
		}
	}
}

// chartAppVersion reads deploy/chart/Chart.yaml's appVersion.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "deploy", "chart", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml: appVersion %q (%v)", chart.AppVersion, err)
	}
	return chart.AppVersion
}

// TestImagesAreTaggedWithTheChartsAppVersion: without VERSION, docker-build
// tags both images with the chart's appVersion, the tag the chart pulls by
// default, and passes it to the build for the version package.
func TestImagesAreTaggedWithTheChartsAppVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "deploy", "chart", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml: appVersion %q (%v)", chart.AppVersion, err)
	}
	cmd := makeCommand(t, "", "-n", "docker-build")
	cmd.Env = append(cmd.Env, "VERSION=") // an empty environment value must not win over the default
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n docker-build: %v\n%s", err, out)
	}
	for _, want := range []string{
		"--build-arg VERSION=" + chart.AppVersion + " -t registry.local/vmoperator/vmop-controller:" + chart.AppVersion,
		"--build-arg VERSION=" + chart.AppVersion + " -t registry.local/vmoperator/vmop-agent:" + chart.AppVersion,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make -n docker-build does not run %q:\n%s", want, out)
		}
	}
}

// TestBaseImagesArePinnedByDigest: every FROM of both Dockerfiles names a
// digest (a stage built earlier in the same file aside), so a rebuild does
// not silently pick up whatever a tag points at that day.
func TestBaseImagesArePinnedByDigest(t *testing.T) {
	for _, file := range []string{"Dockerfile.controller", "Dockerfile.agent"} {
		raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), file))
		if err != nil {
			t.Fatal(err)
		}
		froms := 0
		scanner := bufio.NewScanner(bytes.NewReader(raw))
		for scanner.Scan() {
			fields := strings.Fields(scanner.Text())
			if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
				continue
			}
			froms++
			if !strings.Contains(fields[1], "@sha256:") {
				t.Errorf("%s: %s is not pinned by digest", file, fields[1])
			}
		}
		if froms != 2 {
			t.Errorf("%s: %d FROM lines, want a build stage and a runtime stage", file, froms)
		}
	}
}

// dockerignorePatterns reads .dockerignore's patterns (no negations: it has none).
func dockerignorePatterns(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: negation %q: this check does not handle negations", line)
		}
		patterns = append(patterns, strings.TrimSuffix(line, "/"))
	}
	return patterns
}

// ignored says whether Docker leaves path out of the context: a pattern
// matches it or one of its parent folders (filepath.Match is what Docker's
// matcher builds on, for patterns without **).
func ignored(patterns []string, path string) bool {
	for dir := path; dir != "."; dir = filepath.Dir(dir) {
		for _, pattern := range patterns {
			if ok, _ := filepath.Match(pattern, dir); ok {
				return true
			}
		}
	}
	return false
}

// TestDockerContextHoldsWhatTheImagesBuild: the .dockerignore leaves out
// bin/ and .git, yet keeps go.mod, go.sum and every folder of this module
// that the two commands compile from.
func TestDockerContextHoldsWhatTheImagesBuild(t *testing.T) {
	patterns := dockerignorePatterns(t)
	for _, path := range []string{"bin/etcd", ".git", "test/crds/kubevirt.io_virtualmachines.yaml"} {
		if !ignored(patterns, path) {
			t.Errorf(".dockerignore keeps %s in the build context", path)
		}
	}
	root := controlplane.RepoRoot()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/vmop-controller", "./cmd/vmop-agent")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, rel)
	}
	for _, path := range needed {
		if ignored(patterns, path) {
			t.Errorf(".dockerignore leaves out %s, which the images compile from", path)
		}
	}
	t.Logf("the build context keeps %d paths the images need: %v", len(needed), needed)
}

// TestMakeTestBuildsEveryToolTheTestsUse: on a machine where bin/ is empty,
// make test first builds every binary a test runs. A prerequisite named by
// a variable that is defined further down the Makefile expands to nothing
// and slips out unnoticed where bin/ is already full (it happened to the
// CNI plugins), so this dry run uses an empty BIN.
func TestMakeTestBuildsEveryToolTheTestsUse(t *testing.T) {
	bin := t.TempDir()
	cmd := makeCommand(t, "", "-n", "BIN="+bin, "test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n test: %v\n%s", err, out)
	}
	// Only what comes before the tests counts: sub-makes (test-kernel)
	// build their own prerequisites later.
	before, _, found := strings.Cut(string(out), "go test -count=1 -timeout 30m -tags integration ./...")
	if !found {
		t.Fatalf("make -n test runs no go test -timeout 30m -tags integration ./...:\n%s", out)
	}
	for _, want := range []string{
		"-o " + bin + "/etcd ",
		"-o " + bin + "/kube-apiserver ",
		"-o " + bin + "/kube-controller-manager ",
		"-o " + bin + "/kube-1.32/kube-apiserver ",
		"-o " + bin + "/helm ",
		"-o " + bin + "/controller-gen ",
		"-o " + bin + "/cni/ ",
		"-o " + bin + "/kubevirt-admit ",
		"apt-get download prometheus",
		"go run ./build/images -out " + bin + "/images",
	} {
		if !strings.Contains(before, want) {
			t.Errorf("make -n test on an empty bin/ does not run %q before the tests", want)
		}
	}
}

// TestMakeFuzzRunsEveryFuzzTarget: go test -fuzz takes one target a run,
// so make fuzz names each; one added to the code and not to the Makefile
// would never be fuzzed beyond its seeds. Each runs for FUZZTIME.
func TestMakeFuzzRunsEveryFuzzTarget(t *testing.T) {
	root := controlplane.RepoRoot()
	declared := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var targets []string
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.IsDir() && (entry.Name() == "bin" || entry.Name() == "testdata" || strings.HasPrefix(entry.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if entry.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		// test/ is a module of its own: make runs its targets from there.
		module := `^`
		if rel, ok := strings.CutPrefix(dir, "test/"); ok {
			module, dir = `^cd test && `, rel
		}
		for _, m := range declared.FindAllStringSubmatch(string(raw), -1) {
			targets = append(targets, `(?m)`+module+`.*go test .*-run '\^\$' -fuzz '\^`+m[1]+`\$' -fuzztime 7m .*\./`+regexp.QuoteMeta(dir)+`/$`)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) < 3 {
		t.Fatalf("found %d fuzz targets, want at least the 3 of issue 11: %v", len(targets), targets)
	}
	out := runMake(t, "", "-n", "fuzz", "FUZZTIME=7m")
	for _, target := range targets {
		if !regexp.MustCompile(target).MatchString(out) {
			t.Errorf("make fuzz runs no line matching %s", target)
		}
	}
}
