package devenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// TestMgmtSampleAppliesUnchanged: the environment declares HostNetwork mgmt
// from config/samples, so the request's `kubectl apply -f config/samples/`
// finds it unchanged rather than patching the environment's object.
func TestMgmtSampleAppliesUnchanged(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	h, err := sampleHostNetwork(filepath.Join(controlplane.RepoRoot(), MgmtSample))
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Create(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kubectl", "apply", "-f", MgmtSample)
	cmd.Dir = controlplane.RepoRoot()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig, "KUBECACHEDIR="+filepath.Join(t.TempDir(), "cache"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", MgmtSample, err, out)
	}
	if strings.TrimSpace(string(out)) != "hostnetwork.vm.example.com/mgmt unchanged" {
		t.Errorf("kubectl apply -f %s printed %q, want it unchanged", MgmtSample, out)
	}
}
