package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/controlplane"
)

const agentUser = "system:serviceaccount:vmop-system:vmop-agent"

// agentRole reads the ClusterRole that make manifests generates from the
// +kubebuilder:rbac markers in agent/. make verify fails when the file is
// stale, so reading it tests the markers without building controller-gen
// here, and tests exactly what the Helm chart installs.
func agentRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	path := filepath.Join(controlplane.RepoRoot(), "deploy", "rbac", "agent", "role.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the generated role: %v", err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(raw, role); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if role.Name != "vmop-agent" || len(role.Rules) == 0 {
		t.Fatalf("%s: role %q with %d rules, want vmop-agent with rules", path, role.Name, len(role.Rules))
	}
	return role
}

// impersonatingKubeconfig is the admin kubeconfig acting as agentUser, so
// the apiserver's RBAC decides every request.
func impersonatingKubeconfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = agentUser
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAgentRunsWithItsRBACOnly binds only the generated role and runs the
// agent as that user: it must publish, renew its Lease and verify policies.
func TestAgentRunsWithItsRBACOnly(t *testing.T) {
	ctx := context.Background()
	const node = "node-rbac"
	ns := setupNode(t, node)
	role := agentRole(t)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vmop-agent"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: agentUser}},
	}
	policy := &nmstatev1.NodeNetworkConfigurationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-br-missing"},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
			DesiredState: nmstateshared.NewState(`{"interfaces":[{"name":"br-absent","type":"linux-bridge","state":"up"}]}`),
		},
	}
	for _, obj := range []client.Object{role, binding, policy} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(ctx, obj) })
	}

	healthAddr := freeAddr(t)
	args := append(agentArgs(t, node, ns, freeAddr(t), healthAddr), "--kubeconfig="+impersonatingKubeconfig(t))
	exit := make(chan int, 1)
	go func() { exit <- run(args) }()
	t.Cleanup(func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM) // run() has the handler installed
		select {
		case <-exit:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop")
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		nc := &vmv1alpha1.NodeCapability{}
		err := cp.Client.Get(ctx, client.ObjectKey{Name: node}, nc)
		code, _ := get("http://" + healthAddr + "/readyz")
		if err == nil && code == http.StatusOK && len(nc.Status.Policies) == 1 {
			p := nc.Status.Policies[0]
			if p.Name != policy.Name || p.Verified || p.Message != "no enactment for this node yet; bridge br-absent does not exist" {
				t.Errorf("policy = %+v", p)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent with only its role did not publish a verified-policies status (last error %v, readyz %d, status %+v)", err, code, nc.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
