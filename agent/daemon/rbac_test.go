//go:build integration

package daemon

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

const agentUser = "system:serviceaccount:vmop-system:vmop-agent"

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
// agent as that user: it must publish, renew its Lease, verify policies,
// and review its scrapers' tokens (TokenReview, SubjectAccessReview).
func TestAgentRunsWithItsRBACOnly(t *testing.T) {
	ctx := context.Background()
	const node = "node-rbac"
	ns := setupNode(t, node)
	// The generated roles (make verify keeps them in step with the markers),
	// exactly what the Helm chart installs; the Lease Role in the agent's namespace.
	granted, err := controlplane.GrantGeneratedRoles(ctx, cp.Client, "agent", agentUser, "vmop-"+node)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range granted {
		t.Cleanup(func() { _ = cp.Client.Delete(ctx, obj) })
	}
	policy := &nmstatev1.NodeNetworkConfigurationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-br-missing"},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
			DesiredState: nmstateshared.NewState(`{"interfaces":[{"name":"br-absent","type":"linux-bridge","state":"up"}]}`),
		},
	}
	for _, obj := range []client.Object{policy} {
		if err := cp.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(ctx, obj) })
	}

	healthAddr, metricsAddr := freeAddr(t), freeAddr(t)
	args := append(agentArgs(t, node, ns, metricsAddr, healthAddr), "--kubeconfig="+impersonatingKubeconfig(t))
	exit := make(chan int, 1)
	go func() { exit <- Run(args) }()
	t.Cleanup(func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM) // Run has the handler installed
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
			checkScrapes(t, metricsAddr)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent with only its role did not publish a verified-policies status (last error %v, readyz %d, status %+v)", err, code, nc.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkScrapes: the agent, with only its role, serves /metrics to a token
// allowed to GET it and refuses one that is not (its reviews of both
// tokens pass its RBAC; a 500 would say they did not).
func checkScrapes(t *testing.T, metricsAddr string) {
	t.Helper()
	if code, body := scrape(metricsAddr, scraper(t, "scraper-rbac", true)); code != http.StatusOK || !strings.Contains(body, "vmop_node_build_info") {
		t.Errorf("/metrics with a metrics-reader token = %d %.200q, want 200 and the metrics", code, body)
	}
	if code, body := scrape(metricsAddr, scraper(t, "outsider-rbac", false)); code != http.StatusForbidden {
		t.Errorf("/metrics with a token without GET /metrics = %d %.200q, want 403", code, body)
	}
}
