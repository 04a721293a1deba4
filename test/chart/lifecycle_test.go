package chart

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/kubelet"
	"github.com/jianfenliu/vmoperator/test/observe"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// previousChart is the chart as released before this version (0.1.0),
// packaged from the last landed commit, to upgrade from.
const previousChart = "testdata/vmoperator-0.1.0.tgz"

const releaseName = "vmop"

// TestInstallUpgradeUninstall drives the chart through Helm's Go SDK on a
// real apiserver: install the previous release, upgrade to this chart (its
// CRD hook must bring the new CRDs, which Helm itself never upgrades), run
// both components from the images `make images` built, exactly as the
// rendered Deployment and DaemonSet say, under their service accounts, see
// a profile reach Running and the agent publish, then uninstall: every
// profile, VM and disk stays, the node labels the VM requires stay, and of
// the operator only what docs/operations.md lists ("Uninstalling") is left. On a
// Kubernetes older than 1.37, where the previous chart's CRDs never
// installed, it proves that refusal and installs this chart fresh instead
// of upgrading.
func TestInstallUpgradeUninstall(t *testing.T) {
	cp, err := controlplane.Start(controlplane.WithoutOwnCRDs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	if err := cp.StartGarbageCollector(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{
			"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "standard"}, Provisioner: "example.com/csi"},
	} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := simulator.Start(ctx, cp.Config); err != nil {
		t.Fatal(err)
	}
	node := startNode(t, ctx, cp)
	helmConfig := helmConfiguration(t, cp)

	// 1. The previous release. Its images (0.1.0) are not on the node: its
	// Pods stay Pending, as where nobody imported or pushed them.
	current := loadChart(t, filepath.Join(controlplane.RepoRoot(), "deploy", "chart"))
	values := map[string]any{
		"controller": map[string]any{"allowEmulation": true, "metricsPort": freePort(t), "healthPort": freePort(t)},
		"agent":      map[string]any{"metricsPort": freePort(t), "healthPort": freePort(t)},
	}
	var upgraded *release.Release
	if minor := serverMinor(t, cp); minor < previousChartMinKubeMinor {
		// 0.1.0 claimed >=1.30 but never installed before 1.37: its CRDs'
		// name rule called format.dns1123Label(), which older apiservers
		// price over the CEL budget. There the test proves that, then a
		// fresh install of this chart (its CRD hook included); the upgrade
		// itself is proven on the newest Kubernetes.
		_, err := runInstall(helmConfig, loadChart(t, previousChart), map[string]any{})
		if err == nil || !strings.Contains(err.Error(), "estimated rule cost exceeds budget") {
			t.Fatalf("helm install 0.1.0 on Kubernetes 1.%d: %v; want its CRDs refused for their CEL cost", minor, err)
		}
		t.Logf("Kubernetes 1.%d refuses 0.1.0's CRDs as it should; installing %s fresh", minor, current.Metadata.Version)
		upgraded = install(t, helmConfig, current, values)
	} else {
		installed := install(t, helmConfig, loadChart(t, previousChart), map[string]any{})
		if installed.Chart.Metadata.Version != "0.1.0" {
			t.Fatalf("installed chart %s", installed.Chart.Metadata.Version)
		}
		if crd := getCRD(t, cp, "virtualmachineprofiles.vm.example.com"); !slices.Contains(crd.Spec.Names.ShortNames, "vmp") {
			t.Fatalf("the previous chart's profile CRD should have had the old short name vmp: %v", crd.Spec.Names.ShortNames)
		}

		// 2. The upgrade.
		upgraded = upgrade(t, helmConfig, current, values, node)
	}
	if strings.Contains(upgraded.Info.Notes, "WARNING") {
		t.Errorf("NOTES warn although the namespace is privileged:\n%s", upgraded.Info.Notes)
	}
	crd := getCRD(t, cp, "virtualmachineprofiles.vm.example.com")
	if slices.Contains(crd.Spec.Names.ShortNames, "vmp") || !slices.Contains(crd.Spec.Names.ShortNames, "vmprofile") {
		t.Errorf("the CRD hook did not upgrade the profile CRD: short names %v", crd.Spec.Names.ShortNames)
	}
	getCRD(t, cp, "hostnetworks.vm.example.com") // new in 0.2.0: only the hook can have created it

	// 3. Both components run from their images.
	observe.Eventually(t, 60*time.Second, "the agent publishes node-a's NodeCapability", func() (bool, string) {
		var nc vmv1alpha1.NodeCapability
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: "node-a"}, &nc); err != nil {
			return false, err.Error() + "\n" + node.Logs()
		}
		return len(nc.Status.Conditions) > 0, fmt.Sprintf("%+v", nc.Status.Conditions)
	})
	// The kubelet stand-in applies the container's capabilities as a
	// runtime does: the chart's CAP_BPF and CAP_NET_ADMIN are enough to count.
	observe.Eventually(t, 30*time.Second, "node-a's agent counts per VLAN with the chart's capabilities", func() (bool, string) {
		var nc vmv1alpha1.NodeCapability
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: "node-a"}, &nc); err != nil {
			return false, err.Error()
		}
		counting := meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
		return counting != nil && counting.Status == metav1.ConditionTrue, fmt.Sprintf("%+v\n%s", counting, node.Logs())
	})
	checkMetricsAsInstalled(t, ctx, cp, values)
	hostNetwork := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "kept"},
		Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-kept"}}
	profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", OSImage: "registry.local/centos-stream:9",
			Disks: []vmv1alpha1.DiskConfig{{Name: "data", Size: "1Gi", StorageClassName: "standard"}}}}
	for _, obj := range []client.Object{hostNetwork, profile} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	observe.Eventually(t, 60*time.Second, "the profile runs", func() (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(profile), profile); err != nil {
			return false, err.Error()
		}
		return profile.Status.Phase == vmv1alpha1.PhaseRunning, observe.Describe(profile) + "\n" + node.Logs()
	})
	// The one replica the stand-in runs leads, and says so in its log
	// (`kubectl logs deployment/<release>-controller-manager` shows it).
	observe.Eventually(t, 30*time.Second, "the controller logs that it leads", func() (bool, string) {
		logs, _ := filepath.Glob(filepath.Join(node.WorkDir, "pods", releaseName+"-controller-manager-*.log"))
		for _, file := range logs {
			if raw, err := os.ReadFile(file); err == nil && strings.Contains(string(raw), "this replica leads") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("controller logs %v:\n%s", logs, node.LogsOf(releaseName+"-controller-manager-"))
	})
	observe.Eventually(t, 30*time.Second, "the controller holds its finalizer on the HostNetwork", func() (bool, string) {
		_ = cp.Client.Get(ctx, client.ObjectKeyFromObject(hostNetwork), hostNetwork)
		return len(hostNetwork.Finalizers) > 0, fmt.Sprint(hostNetwork.Finalizers)
	})
	nodeLabels := func() []string {
		var n corev1.Node
		_ = cp.Client.Get(ctx, client.ObjectKey{Name: "node-a"}, &n)
		var ours []string
		for key := range n.Labels {
			if strings.HasPrefix(key, "cap.vm.example.com/") {
				ours = append(ours, key)
			}
		}
		return ours
	}
	if len(nodeLabels()) == 0 {
		t.Error("the controller labelled node-a with no capability")
	}
	userObjects := []client.Object{profile, &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "web-vm", Namespace: "default"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "web-data", Namespace: "default"}}, hostNetwork}
	uids := map[string]string{}
	for _, obj := range userObjects {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatalf("%T %s: %v", obj, obj.GetName(), err)
		}
		uids[obj.GetName()] = string(obj.GetUID())
	}

	// The VM's required node affinity names capability labels: the
	// cleanup must leave exactly those, or the VM could never restart or
	// live-migrate again.
	vmNeeds := requiredNodeLabels(t, cp, client.ObjectKey{Namespace: "default", Name: "web-vm"})
	if len(vmNeeds) == 0 {
		t.Error("the VM requires no capability label; the uninstall cannot show it keeps them")
	}

	// 4. Uninstall: the cleanup hook runs once both components are gone.
	uninstall := action.NewUninstall(helmConfig)
	uninstall.Timeout = 3 * time.Minute
	uninstall.Wait = true
	started := time.Now()
	if _, err := uninstall.Run(releaseName); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, node.Logs())
	}
	t.Logf("helm uninstall took %v; the cleanup hook said:\n%s", time.Since(started).Round(100*time.Millisecond), node.LogsOf(releaseName+"-cleanup-"))
	for _, obj := range userObjects {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil || string(obj.GetUID()) != uids[obj.GetName()] {
			t.Errorf("%T %s did not survive the uninstall unchanged: %v", obj, obj.GetName(), err)
		}
	}
	if len(hostNetwork.Finalizers) != 0 {
		t.Errorf("HostNetwork kept its finalizer %v: deleting it later would hang", hostNetwork.Finalizers)
	}
	if labels := nodeLabels(); !equalSets(labels, vmNeeds) {
		t.Errorf("node-a keeps capability labels %v, want exactly those the VM requires %v", labels, vmNeeds)
	}
	left := leftBehind(t, cp)
	t.Logf("left behind after uninstall: %v", left)
	documented := []string{
		"CustomResourceDefinition hostnetworks.vm.example.com", "CustomResourceDefinition nodecapabilities.vm.example.com",
		"CustomResourceDefinition virtualmachineprofiles.vm.example.com",
		"HostNetwork kept", "VirtualMachineProfile default/web", "Namespace vmop-system",
	}
	for _, item := range left {
		if !slices.Contains(documented, item) {
			t.Errorf("uninstall left %s, which docs/operations.md does not list", item)
		}
	}
}

// requiredNodeLabels lists the cap.vm.example.com/ label keys the required
// node affinity of the KubeVirt VM's template, or of its running instance
// (which keeps the affinity it started with), names.
func requiredNodeLabels(t *testing.T, cp *controlplane.ControlPlane, key client.ObjectKey) []string {
	t.Helper()
	var vm kubevirtv1.VirtualMachine
	if err := cp.Client.Get(context.Background(), key, &vm); err != nil {
		t.Fatalf("VM %s: %v", key, err)
	}
	specs := []*kubevirtv1.VirtualMachineInstanceSpec{}
	if vm.Spec.Template != nil {
		specs = append(specs, &vm.Spec.Template.Spec)
	}
	var vmi kubevirtv1.VirtualMachineInstance
	if err := cp.Client.Get(context.Background(), key, &vmi); err == nil {
		specs = append(specs, &vmi.Spec)
	} else if !apierrors.IsNotFound(err) {
		t.Fatalf("VMI %s: %v", key, err)
	}
	var keys []string
	for _, spec := range specs {
		if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
			continue
		}
		for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, expression := range term.MatchExpressions {
				if strings.HasPrefix(expression.Key, "cap.vm.example.com/") && !slices.Contains(keys, expression.Key) {
					keys = append(keys, expression.Key)
				}
			}
		}
	}
	return keys
}

// equalSets: a and b hold the same strings, in any order.
func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// startNode runs the kubelet stand-in on node-a with the images make
// images built.
func startNode(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane) *kubelet.Node {
	t.Helper()
	work, err := os.MkdirTemp("", "kubelet-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o755); err != nil { // the controller runs as 65532
		t.Fatal(err)
	}
	// make images writes bin/images, whichever control plane KUBEBUILDER_ASSETS names.
	images, err := kubelet.ImportArchives(filepath.Join(controlplane.RepoRoot(), "bin", "images"), work)
	if err != nil {
		t.Fatal(err)
	}
	node := &kubelet.Node{Name: "node-a", Images: images, Kubeconfig: cp.Kubeconfig, WorkDir: work, Logf: t.Logf}
	if err := node.Run(ctx, cp.Config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		node.Stop()
		if t.Failed() {
			t.Logf("processes' output:\n%s", node.Logs())
		}
		_ = os.RemoveAll(work)
	})
	return node
}

func helmConfiguration(t *testing.T, cp *controlplane.ControlPlane) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = ptr.To(cp.Kubeconfig)
	flags.Namespace = ptr.To(namespace)
	config := new(action.Configuration)
	if err := config.Init(flags, namespace, "secret", func(format string, v ...any) { t.Logf("helm: "+format, v...) }); err != nil {
		t.Fatal(err)
	}
	return config
}

func loadChart(t *testing.T, path string) *helmchart.Chart {
	t.Helper()
	chart, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return chart
}

// previousChartMinKubeMinor is the first Kubernetes minor that accepts the
// CRDs of the previous chart (testdata/vmoperator-0.1.0.tgz).
const previousChartMinKubeMinor = 37

func install(t *testing.T, config *action.Configuration, chart *helmchart.Chart, values map[string]any) *release.Release {
	t.Helper()
	rel, err := runInstall(config, chart, values)
	if err != nil {
		t.Fatalf("helm install %s: %v", chart.Metadata.Version, err)
	}
	return rel
}

func runInstall(config *action.Configuration, chart *helmchart.Chart, values map[string]any) (*release.Release, error) {
	install := action.NewInstall(config)
	install.ReleaseName, install.Namespace, install.Timeout = releaseName, namespace, 2*time.Minute
	return install.Run(chart, values)
}

// serverMinor is the apiserver's Kubernetes minor version.
func serverMinor(t *testing.T, cp *controlplane.ControlPlane) int {
	t.Helper()
	info, err := cp.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	minor, err := strconv.Atoi(strings.TrimSuffix(info.Minor, "+"))
	if err != nil {
		t.Fatalf("apiserver minor version %q: %v", info.Minor, err)
	}
	return minor
}

func upgrade(t *testing.T, config *action.Configuration, chart *helmchart.Chart, values map[string]any, node *kubelet.Node) *release.Release {
	t.Helper()
	upgrade := action.NewUpgrade(config)
	upgrade.Namespace, upgrade.Timeout = namespace, 3*time.Minute
	started := time.Now()
	rel, err := upgrade.Run(releaseName, chart, values)
	if err != nil {
		t.Fatalf("helm upgrade to %s: %v\n%s", chart.Metadata.Version, err, node.Logs())
	}
	t.Logf("helm upgrade to %s (CRD hook included) took %v", chart.Metadata.Version, time.Since(started).Round(100*time.Millisecond))
	return rel
}

func getCRD(t *testing.T, cp *controlplane.ControlPlane, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Name: name}, obj); err != nil {
		t.Fatalf("CRD %s: %v", name, err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := runtimeConvert(obj, crd); err != nil {
		t.Fatal(err)
	}
	return crd
}

// checkMetricsAsInstalled: both components, run from their images with the
// chart's args and roles, serve /metrics over HTTPS on the Pod IP to a
// ServiceAccount bound to the chart's metrics-reader ClusterRole, and
// refuse a request without a token (401) and a token of an account
// without that role (403). Their own roles let them review both tokens.
func checkMetricsAsInstalled(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, values map[string]any) {
	t.Helper()
	reader, err := cp.NewScraperBoundTo(ctx, namespace, "scraper", releaseName+"-metrics-reader", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := cp.NewScraperBoundTo(ctx, namespace, "outsider", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Gone before the uninstall, which checks what is left behind.
	defer func() { _ = reader.Delete(ctx, cp); _ = outsider.Delete(ctx, cp) }()
	for component, want := range map[string]string{"controller": "vmop_controller_build_info", "agent": "vmop_node_build_info"} {
		url := fmt.Sprintf("https://%s:%v/metrics", kubelet.PodIP, values[component].(map[string]any)["metricsPort"])
		observe.Eventually(t, 30*time.Second, component+" serves /metrics to the chart's metrics reader", func() (bool, string) {
			code, body := controlplane.ScrapeHTTPS(url, reader.Token)
			return code == http.StatusOK && strings.Contains(body, want), fmt.Sprintf("%d %.300s", code, body)
		})
		for token, wantCode := range map[string]int{"": http.StatusUnauthorized, outsider.Token: http.StatusForbidden} {
			if code, body := controlplane.ScrapeHTTPS(url, token); code != wantCode {
				t.Errorf("%s /metrics with token %.10q = %d %.300q, want %d", component, token, code, body, wantCode)
			}
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// leftBehind lists, through discovery, every object of the operator still
// in the cluster: anything in the release namespace (but what Kubernetes
// puts in every namespace, and events), anything of our API group or
// carrying the release's labels or name, and our CRDs.
func leftBehind(t *testing.T, cp *controlplane.ControlPlane) []string {
	t.Helper()
	ctx := context.Background()
	disco, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := disco.ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, list := range lists {
		gv, _ := schema.ParseGroupVersion(list.GroupVersion)
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "list") || strings.Contains(r.Name, "/") || r.Kind == "Event" {
				continue
			}
			objects := &unstructured.UnstructuredList{}
			objects.SetGroupVersionKind(gv.WithKind(r.Kind + "List"))
			if err := cp.Client.List(ctx, objects); err != nil {
				continue // aggregated or otherwise unlistable here
			}
			for _, obj := range objects.Items {
				if ours(&obj, gv.Group) {
					name := obj.GetName()
					if obj.GetNamespace() != "" {
						name = obj.GetNamespace() + "/" + name
					}
					left = append(left, r.Kind+" "+name)
				}
			}
		}
	}
	slices.Sort(left)
	return left
}

func ours(obj *unstructured.Unstructured, group string) bool {
	switch {
	case obj.GetNamespace() == namespace:
		return !(obj.GetName() == "default" && obj.GetKind() == "ServiceAccount") && obj.GetName() != "kube-root-ca.crt"
	case group == "vm.example.com", obj.GetLabels()["app.kubernetes.io/instance"] == releaseName, strings.HasPrefix(obj.GetName(), releaseName+"-"):
		return true
	case obj.GetKind() == "CustomResourceDefinition" && strings.HasSuffix(obj.GetName(), ".vm.example.com"):
		return true
	case obj.GetKind() == "Namespace" && obj.GetName() == namespace:
		return true
	}
	return false
}

// TestNotesWarnAboutPodSecurity: installing into a namespace that enforces
// less than "privileged" (where the agent's Pods would be refused) prints
// the warning and the fix; NOTES read the live namespace, so this is a
// server-side dry run.
func TestNotesWarnAboutPodSecurity(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	for level, ns := range map[string]string{"baseline": "vmop-baseline", "privileged": "vmop-privileged"} {
		if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": level}}}); err != nil {
			t.Fatal(err)
		}
	}
	chart := loadChart(t, filepath.Join(controlplane.RepoRoot(), "deploy", "chart"))
	notes := func(ns string) string {
		install := action.NewInstall(helmConfiguration(t, cp))
		install.ReleaseName, install.Namespace, install.DryRun, install.DryRunOption = releaseName, ns, true, "server"
		rel, err := install.Run(chart, map[string]any{})
		if err != nil {
			t.Fatalf("dry-run install into %s: %v", ns, err)
		}
		return rel.Info.Notes
	}
	if got := notes("vmop-baseline"); !strings.Contains(got, `enforces the Pod Security level
"baseline"`) || !strings.Contains(got, "kubectl label namespace vmop-baseline pod-security.kubernetes.io/enforce=privileged") {
		t.Errorf("no warning for a baseline namespace:\n%s", got)
	}
	if got := notes("vmop-privileged"); strings.Contains(got, "WARNING") {
		t.Errorf("a warning for a privileged namespace:\n%s", got)
	}
}
