package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// InstallChartPolicies renders the chart's ValidatingAdmissionPolicies and
// their bindings (deploy/chart/templates/admission.yaml, with the pinned
// bin/helm) for a release named vmop in namespace, and creates them, so a
// test's controller runs under the same admission rules as in the chart.
// The apiserver loads them a moment later: callers wait for a refusal
// they expect before relying on them.
func (cp *ControlPlane) InstallChartPolicies(ctx context.Context, namespace string) error {
	version, err := cp.ServerVersion()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(BinDir(), "helm"), "template", "vmop", "deploy/chart",
		"--namespace", namespace, "--show-only", "templates/admission.yaml", "--kube-version", version.GitVersion)
	cmd.Dir = RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("helm template --show-only templates/admission.yaml: %w: %s", err, stderr.String())
	}
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode the chart's admission policies: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := cp.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
}
