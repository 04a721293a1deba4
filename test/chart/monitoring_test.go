package chart

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/test/controlplane"
)

// TestMonitoring renders the PodMonitor and PrometheusRule for a release
// named edge in namespace ops, and checks that the apiserver accepts both
// under the Prometheus Operator's own schemas (generated from its Go types),
// that the PodMonitor scrapes the metrics port of exactly the controller
// and the agent, and that the rule's groups are metrics/alerts.yaml bound to
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
	podMonitor, rule := byKind["PodMonitor"], byKind["PrometheusRule"]
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
		for _, obj := range []*unstructured.Unstructured{podMonitor, rule} {
			if err := cp.Client.Create(ctx, obj.DeepCopy(), client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				t.Errorf("%s: %v", obj.GetKind(), err)
			}
		}
	})

	t.Run("PodMonitor scrapes both components' metrics port", func(t *testing.T) {
		var spec struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port string `json:"port"`
			} `json:"podMetricsEndpoints"`
		}
		convertField(t, podMonitor, "spec", &spec)
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
		bound := strings.NewReplacer(`daemonset="vmop-agent"`, `daemonset="edge-agent"`, `namespace="vmop-system"`, `namespace="ops"`).Replace(string(source))
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

func decodeAll(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objects []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := decoder.Decode(&obj.Object); err != nil {
			if err == io.EOF {
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
