package chart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// TestMonitoring renders the PodMonitor and PrometheusRule for a release
// named edge in namespace ops, and checks that the apiserver accepts both
// under the Prometheus Operator's own schemas (generated from its Go types),
// that the PodMonitor scrapes the HTTPS metrics port of exactly the
// controller and the agent with a token the apiserver authorizes for GET
// /metrics, and that the rule's groups are metrics/alerts.yaml bound to
// this release, valid for promtool.
func TestMonitoring(t *testing.T) {
	out := helm(t, "template", "edge", "deploy/chart", "--namespace", "ops", "--kube-version", "1.37.2",
		"--set", "monitoring.podMonitor.enabled=true", "--set", "monitoring.podMonitor.labels.release=kps",
		"--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.prometheusRule.labels.release=kps")
	objects := decodeAll(t, out)
	byKind := map[string]*unstructured.Unstructured{}
	for _, obj := range objects {
		byKind[obj.GetKind()] = obj
	}
	podMonitor, rule, tokenSecret := byKind["PodMonitor"], byKind["PrometheusRule"], byKind["Secret"]
	if podMonitor == nil || rule == nil {
		t.Fatalf("rendered no PodMonitor (%v) or PrometheusRule (%v)", podMonitor != nil, rule != nil)
	}
	for _, obj := range []*unstructured.Unstructured{podMonitor, rule} {
		if obj.GetLabels()["release"] != "kps" {
			t.Errorf("%s labels %v: the selection label is missing", obj.GetKind(), obj.GetLabels())
		}
	}

	t.Run("accepted by the apiserver", func(t *testing.T) {
		cp, err := controlplane.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Stop() })
		ctx := context.Background()
		if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops"}}); err != nil {
			t.Fatal(err)
		}
		scraperObjects := scraperAccess(t, objects)
		for _, obj := range append([]*unstructured.Unstructured{podMonitor, rule}, scraperObjects...) {
			if err := cp.Client.Create(ctx, obj.DeepCopy(), client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
		}
		// The scraper's token is good for what both components' metrics
		// filter asks the apiserver: may this user GET /metrics? The RBAC
		// authorizer learns new bindings through its informers, so the
		// allowed user is asked until the answer settles (at most 30 s),
		// and only then the user that must stay refused.
		mayGetMetrics := func(user string) (bool, string) {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}}
			if err := cp.Client.Create(ctx, review); err != nil {
				t.Fatal(err)
			}
			return review.Status.Allowed, review.Status.Reason
		}
		const scraper, agent = "system:serviceaccount:ops:edge-metrics-scraper", "system:serviceaccount:ops:edge-agent"
		allowed, reason := mayGetMetrics(scraper)
		for deadline := time.Now().Add(30 * time.Second); !allowed && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			allowed, reason = mayGetMetrics(scraper)
		}
		if !allowed {
			t.Errorf("%s may GET /metrics: false within 30 s, want true (%s)", scraper, reason)
		}
		if allowed, reason := mayGetMetrics(agent); allowed {
			t.Errorf("%s may GET /metrics: true, want false (%s)", agent, reason)
		}
	})

	t.Run("PodMonitor scrapes both components' HTTPS metrics port", func(t *testing.T) {
		var spec struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port      string `json:"port"`
				Scheme    string `json:"scheme"`
				TLSConfig struct {
					InsecureSkipVerify bool `json:"insecureSkipVerify"`
				} `json:"tlsConfig"`
				Authorization struct {
					Type        string                   `json:"type"`
					Credentials corev1.SecretKeySelector `json:"credentials"`
				} `json:"authorization"`
			} `json:"podMetricsEndpoints"`
		}
		convertField(t, podMonitor, "spec", &spec)
		if len(spec.Endpoints) != 1 {
			t.Fatalf("%d endpoints, want 1", len(spec.Endpoints))
		}
		endpoint := spec.Endpoints[0]
		// Self-signed certificates: encrypted, not verified.
		if endpoint.Port != "https-metrics" || endpoint.Scheme != "https" || !endpoint.TLSConfig.InsecureSkipVerify {
			t.Errorf("endpoint %+v, want port https-metrics, scheme https, insecureSkipVerify", endpoint)
		}
		if tokenSecret == nil || endpoint.Authorization.Type != "Bearer" || endpoint.Authorization.Credentials.Name != tokenSecret.GetName() ||
			endpoint.Authorization.Credentials.Key != "token" {
			t.Errorf("authorization %+v, want Bearer from key token of the rendered token Secret", endpoint.Authorization)
		}
		selector, err := metav1.LabelSelectorAsSelector(&spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var scraped []string
		for _, obj := range objects {
			template, found, _ := unstructured.NestedMap(obj.Object, "spec", "template")
			if !found {
				continue
			}
			var pod corev1.PodTemplateSpec
			if err := runtimeConvert(&unstructured.Unstructured{Object: template}, &pod); err != nil {
				t.Fatal(err)
			}
			if !selector.Matches(labels.Set(pod.Labels)) {
				continue
			}
			scraped = append(scraped, obj.GetKind())
			if len(spec.Endpoints) != 1 || !slices.ContainsFunc(pod.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == spec.Endpoints[0].Port }) {
				t.Errorf("%s %s has no port named %+v", obj.GetKind(), obj.GetName(), spec.Endpoints)
			}
		}
		slices.Sort(scraped)
		if strings.Join(scraped, ",") != "DaemonSet,Deployment" {
			t.Errorf("the PodMonitor selects the pods of %v, want the DaemonSet's and the Deployment's", scraped)
		}
	})

	t.Run("PrometheusRule is alerts.yaml for this release", func(t *testing.T) {
		var spec map[string]any
		convertField(t, rule, "spec", &spec)
		raw, err := yaml.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		rendered := filepath.Join(t.TempDir(), "rules.yaml")
		if err := os.WriteFile(rendered, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		promtool := filepath.Join(controlplane.RepoRoot(), "bin", "promtool")
		if out, err := exec.Command(promtool, "check", "rules", rendered).CombinedOutput(); err != nil {
			t.Fatalf("promtool check rules on the rendered PrometheusRule: %v\n%s", err, out)
		}
		source, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "metrics", "alerts.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		bound := strings.NewReplacer(`daemonset="vmoperator-agent"`, `daemonset="edge-agent"`, `namespace="vmoperator-system"`, `namespace="ops"`).Replace(string(source))
		if err := yaml.Unmarshal([]byte(bound), &want); err != nil {
			t.Fatal(err)
		}
		wantRaw, _ := yaml.Marshal(want)
		if string(wantRaw) != string(raw) {
			t.Errorf("the PrometheusRule's spec is not alerts.yaml bound to edge/ops:\n%s", raw)
		}
		if !strings.Contains(string(raw), `kube_daemonset_status_number_available{daemonset="edge-agent", namespace="ops"}`) {
			t.Errorf("the DaemonSet alert is not bound to this release's DaemonSet")
		}
	})
}

// TestMetricsAndProbeAddresses: both components serve /metrics over HTTPS
// on the pod's IP only (the node's IP for the host-network agent), on the
// port the PodMonitor and the prometheus.io annotations name; the agent's
// probes listen on the node's loopback, where the kubelet's probes go.
func TestMetricsAndProbeAddresses(t *testing.T) {
	for _, obj := range render(t) {
		if obj.GetKind() != "Deployment" && obj.GetKind() != "DaemonSet" {
			continue
		}
		template, _, _ := unstructured.NestedMap(obj.Object, "spec", "template")
		var pod corev1.PodTemplateSpec
		if err := runtimeConvert(&unstructured.Unstructured{Object: template}, &pod); err != nil {
			t.Fatal(err)
		}
		container := pod.Spec.Containers[0]
		ports := map[string]int32{}
		for _, p := range container.Ports {
			ports[p.Name] = p.ContainerPort
		}
		metricsPort := ports["https-metrics"]
		if metricsPort == 0 {
			t.Errorf("%s: no https-metrics port among %v", obj.GetKind(), ports)
		}
		if !slices.Contains(container.Args, fmt.Sprintf("--metrics-bind-address=[$(POD_IP)]:%d", metricsPort)) {
			t.Errorf("%s args %v: /metrics not bound to the pod IP on port %d", obj.GetKind(), container.Args, metricsPort)
		}
		if !slices.ContainsFunc(container.Env, func(e corev1.EnvVar) bool {
			return e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
		}) {
			t.Errorf("%s: no POD_IP from status.podIP in %+v", obj.GetKind(), container.Env)
		}
		annotations := pod.Annotations
		if annotations["prometheus.io/scheme"] != "https" || annotations["prometheus.io/port"] != fmt.Sprint(metricsPort) {
			t.Errorf("%s annotations %v, want scheme https on port %d", obj.GetKind(), annotations, metricsPort)
		}
		if obj.GetKind() != "DaemonSet" {
			continue
		}
		if !slices.Contains(container.Args, fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports["health"])) {
			t.Errorf("agent args %v: probes not bound to 127.0.0.1:%d", container.Args, ports["health"])
		}
		for name, probe := range map[string]*corev1.Probe{"liveness": container.LivenessProbe, "readiness": container.ReadinessProbe} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Host != "127.0.0.1" || probe.HTTPGet.Port.String() != "health" {
				t.Errorf("agent %s probe %+v, want an httpGet of host 127.0.0.1 on the health port", name, probe)
			}
		}
	}
}

// scraperAccess returns the objects giving the PodMonitor its token: the
// metrics-reader ClusterRole (exactly the rules the tests' scrapers get),
// the scraper's ServiceAccount bound to it and its token Secret.
func scraperAccess(t *testing.T, objects []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	want := map[string]string{"ClusterRole": "edge-metrics-reader", "ServiceAccount": "edge-metrics-scraper",
		"ClusterRoleBinding": "edge-metrics-scraper", "Secret": "edge-metrics-scraper-token"}
	var found []*unstructured.Unstructured
	for _, obj := range objects {
		if want[obj.GetKind()] != obj.GetName() {
			continue
		}
		found = append(found, obj)
		switch obj.GetKind() {
		case "ClusterRole":
			var role rbacv1.ClusterRole
			if err := runtimeConvert(obj, &role); err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(role.Rules, controlplane.MetricsReaderRules()) {
				t.Errorf("metrics-reader rules %+v, want %+v", role.Rules, controlplane.MetricsReaderRules())
			}
		case "Secret":
			if obj.Object["type"] != string(corev1.SecretTypeServiceAccountToken) || obj.GetAnnotations()[corev1.ServiceAccountNameKey] != "edge-metrics-scraper" {
				t.Errorf("token Secret %v %v, want a service-account token of edge-metrics-scraper", obj.Object["type"], obj.GetAnnotations())
			}
		}
	}
	if len(found) != len(want) {
		t.Fatalf("rendered %d of the scraper's objects %v", len(found), want)
	}
	return found
}

func decodeAll(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objects []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := decoder.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objects
			}
			t.Fatal(err)
		}
		if len(obj.Object) > 0 {
			objects = append(objects, obj)
		}
	}
}

func convertField(t *testing.T, obj *unstructured.Unstructured, field string, into any) {
	t.Helper()
	value, found, err := unstructured.NestedFieldNoCopy(obj.Object, field)
	if err != nil || !found {
		t.Fatalf("%s %s: no %s (%v)", obj.GetKind(), obj.GetName(), field, err)
	}
	raw, err := yaml.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

// TestDashboardConfigMaps: with monitoring.dashboards, one ConfigMap per
// file of deploy/dashboards, holding it unchanged, labelled for Grafana's
// sidecar; without, none.
func TestDashboardConfigMaps(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "deploy", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/dashboards (%v)", err)
	}
	dashboards := func(objects []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
		out := map[string]*unstructured.Unstructured{}
		for _, obj := range objects {
			if obj.GetKind() == "ConfigMap" && strings.Contains(obj.GetName(), "-dashboard-") {
				out[obj.GetName()] = obj
			}
		}
		return out
	}
	if got := dashboards(render(t)); len(got) != 0 {
		t.Errorf("dashboards rendered by default: %v", got)
	}
	rendered := dashboards(render(t, "monitoring.dashboards.enabled=true", "monitoring.dashboards.annotations.grafana_folder=Platform"))
	if len(rendered) != len(files) {
		t.Fatalf("%d dashboard ConfigMaps for %d files", len(rendered), len(files))
	}
	for _, file := range files {
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		cm := rendered["vmop-dashboard-"+strings.TrimPrefix(strings.TrimSuffix(name, ".json"), "vmop-")]
		if cm == nil {
			t.Errorf("no ConfigMap for %s among %v", name, rendered)
			continue
		}
		got, _, _ := unstructured.NestedString(cm.Object, "data", name)
		if got != strings.TrimSuffix(string(want), "\n") {
			t.Errorf("ConfigMap %s does not hold %s unchanged", cm.GetName(), name)
		}
		if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Platform" {
			t.Errorf("ConfigMap %s: labels %v, annotations %v", cm.GetName(), cm.GetLabels(), cm.GetAnnotations())
		}
	}
}
