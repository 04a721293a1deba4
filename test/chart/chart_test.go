// Package chart renders the Helm chart in deploy/chart with the pinned helm
// (bin/helm), lints it, and sends every object it renders to the real
// apiserver as a server-side dry run with strict field validation, so a
// typo or a schema violation in a template fails here, not in a cluster.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

const namespace = "vmop-system"

func helm(t *testing.T, args ...string) string {
	t.Helper()
	stdout, err := runHelm(args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return stdout
}

// runHelm runs the pinned helm in the repository root; its error carries helm's stderr.
func runHelm(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(controlplane.BinDir(), "helm"), args...)
	cmd.Dir = controlplane.RepoRoot()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return stdout.String(), nil
}

// render returns the chart's objects for the given --set values.
func render(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "vmop", "deploy/chart", "--namespace", namespace, "--include-crds", "--kube-version", "1.37.2"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return decodeAll(t, helm(t, args...))
}

func TestChartLints(t *testing.T) {
	out := helm(t, "lint", "deploy/chart", "--strict")
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm lint:\n%s", out)
	}
}

// TestChartObjectsAreAcceptedByTheAPIServer dry-runs every rendered object
// (CRDs included) against a real apiserver, strictly.
func TestChartObjectsAreAcceptedByTheAPIServer(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, obj := range render(t) {
		kinds[obj.GetKind()]++
		if obj.GetKind() == "CustomResourceDefinition" {
			// Installed already by the test control plane from the same files:
			// a dry-run update shows the rendered copy is identical and valid.
			obj.SetResourceVersion("")
			//nolint:staticcheck // SA1019: client.Client.Apply takes apply configurations; these objects are the chart's rendered YAML.
			err := cp.Client.Patch(ctx, obj, client.Apply, client.FieldOwner("chart-test"), client.ForceOwnership, client.DryRunAll)
			if err != nil {
				t.Errorf("CRD %s: %v", obj.GetName(), err)
			}
			continue
		}
		err := cp.Client.Create(ctx, obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
		if err != nil {
			t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	// Besides both components' objects: the PriorityClass, the controller's
	// PodDisruptionBudget, the two hooks' Job, ServiceAccount and roles
	// (the CRD hook also its ConfigMap), and the metrics-reader ClusterRole.
	want := map[string]int{"CustomResourceDefinition": 3, "ServiceAccount": 4, "ClusterRole": 7, "ClusterRoleBinding": 4, "Role": 4, "RoleBinding": 4,
		"ValidatingAdmissionPolicy": 3, "ValidatingAdmissionPolicyBinding": 3, "Deployment": 1, "DaemonSet": 1,
		"PriorityClass": 1, "PodDisruptionBudget": 1, "ConfigMap": 1, "Job": 2}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("rendered %v, want %v", kinds, want)
	}
}

// TestChartGrantsExactlyTheGeneratedRoles: the chart's roles of both
// components are the roles generated from the code's RBAC markers, which
// the tests run with: the ClusterRole, and the Role in the release namespace.
func TestChartGrantsExactlyTheGeneratedRoles(t *testing.T) {
	checked := 0
	for _, obj := range render(t) {
		component := obj.GetLabels()["app.kubernetes.io/component"]
		if component == "" || (obj.GetKind() != "ClusterRole" && obj.GetKind() != "Role") {
			continue
		}
		clusterRole, roles, err := controlplane.GeneratedRoles(component)
		if err != nil {
			t.Fatal(err)
		}
		want := clusterRole.Rules
		if obj.GetKind() == "Role" {
			want = nil
			for _, role := range roles {
				want = append(want, role.Rules...)
			}
			if obj.GetNamespace() != namespace {
				t.Errorf("Role %s in %q, want the release namespace", obj.GetName(), obj.GetNamespace())
			}
		}
		var rendered struct {
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := runtimeConvert(obj, &rendered); err != nil {
			t.Fatal(err)
		}
		if !apiequality.Semantic.DeepEqual(want, rendered.Rules) {
			t.Errorf("%s %s: chart rules differ from deploy/rbac/%s/role.yaml", obj.GetKind(), obj.GetName(), component)
		}
		checked++
	}
	if checked != 4 {
		t.Fatalf("checked %d roles, want a ClusterRole and a Role per component", checked)
	}
}

// oldestTestedKubernetes is the k8s.io/kubernetes release that
// test/tools/kube-oldest pins, and so the one make test-oldest runs the
// validation catalogue and these tests on.
func oldestTestedKubernetes(t *testing.T) (version string, minor int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "tools", "kube-oldest", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "require k8s.io/kubernetes "); ok {
			if _, err := fmt.Sscanf(v, "v1.%d.", &minor); err != nil {
				t.Fatalf("test/tools/kube-oldest requires k8s.io/kubernetes %s: %v", v, err)
			}
			return v, minor
		}
	}
	t.Fatal("test/tools/kube-oldest/go.mod has no 'require k8s.io/kubernetes' line")
	return "", 0
}

// TestChartAdmitsTheOldestTestedKubernetesAndNothingOlder keeps the chart's
// kubeVersion equal to what is proven: helm installs on the release make
// test-oldest tests and refuses the last of the minor before it, whose
// apiserver refuses our CRDs (the format CEL library is not in its rules).
func TestChartAdmitsTheOldestTestedKubernetesAndNothingOlder(t *testing.T) {
	oldest, minor := oldestTestedKubernetes(t)
	helm(t, "template", "vmop", "deploy/chart", "--kube-version", oldest)
	older := fmt.Sprintf("v1.%d.99", minor-1)
	_, err := runHelm("template", "vmop", "deploy/chart", "--kube-version", older)
	if err == nil || !strings.Contains(err.Error(), "chart requires kubeVersion") {
		t.Fatalf("helm template --kube-version %s: %v; want the chart's kubeVersion to refuse it", older, err)
	}
}

func TestChartValues(t *testing.T) {
	args := func(objects []*unstructured.Unstructured, kind string) string {
		for _, obj := range objects {
			if obj.GetKind() == kind {
				containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
				return fmt.Sprint(containers[0].(map[string]any)["args"])
			}
		}
		t.Fatalf("no %s rendered", kind)
		return ""
	}
	defaults := render(t)
	if got := args(defaults, "Deployment"); !strings.Contains(got, "--allow-emulation=false") || !strings.Contains(got, "--agent-lease-namespace="+namespace) {
		t.Errorf("controller args: %s", got)
	}
	changed := render(t, "controller.allowEmulation=true", "agent.extraUplinks=eth1")
	if got := args(changed, "Deployment"); !strings.Contains(got, "--allow-emulation=true") {
		t.Errorf("controller args with allowEmulation: %s", got)
	}
	if got := args(changed, "DaemonSet"); !strings.Contains(got, "--extra-uplinks=eth1") {
		t.Errorf("agent args with extraUplinks: %s", got)
	}
}

func runtimeConvert(obj *unstructured.Unstructured, into any) error {
	raw, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	return yaml.Unmarshal(raw, into)
}
