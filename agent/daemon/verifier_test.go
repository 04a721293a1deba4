//go:build integration

package daemon

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// runServe runs serve, as main does, until the test ends; the test fails
// when serve does not return within 10s of its context ending.
func runServe(t *testing.T, o options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o, testr.New(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not return within 10s of its context ending")
		}
	})
}

// startServe runs serve and waits for /readyz: the first round has been published.
func startServe(t *testing.T, o options, healthAddr string) {
	t.Helper()
	runServe(t, o)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := get("http://" + healthAddr + "/readyz"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("agent never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVerifierSeesPoliciesCreatedAfterStart starts the agent through serve
// and only then creates an NNCP selecting the node and its enactment: the
// verifier's cache must outlive start-up, or the policy never shows.
func TestVerifierSeesPoliciesCreatedAfterStart(t *testing.T) {
	ctx := context.Background()
	const node = "node-late-policy"
	ns := setupNode(t, node)
	labelNode(t, node, map[string]string{"vmop-test/late-policy": "yes"})
	healthAddr := freeAddr(t)
	o, err := parseFlags(agentArgs(t, node, ns, freeAddr(t), healthAddr))
	if err != nil {
		t.Fatal(err)
	}
	startServe(t, o, healthAddr)
	time.Sleep(2 * time.Second) // well past start-up: the sync wait has long returned

	policy := &nmstatev1.NodeNetworkConfigurationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "late-br-main"},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
			NodeSelector: map[string]string{"vmop-test/late-policy": "yes"},
			DesiredState: nmstateshared.NewState(`{"interfaces":[{"name":"br-main","type":"linux-bridge","state":"up","bridge":{"port":[{"name":"main-p0"}]}}]}`),
		},
	}
	create(t, policy)
	createAvailableEnactment(t, node, policy.Name)

	deadline := time.Now().Add(15 * time.Second)
	for {
		nc := &vmv1alpha1.NodeCapability{}
		err := cp.Client.Get(ctx, client.ObjectKey{Name: node}, nc)
		if err == nil && len(nc.Status.Policies) == 1 && nc.Status.Policies[0].Enactment == "Available" {
			if p := nc.Status.Policies[0]; p.Name != policy.Name || !p.Verified {
				t.Errorf("policy = %+v, want %s verified", p, policy.Name)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a policy created after start-up never reached status.policies (last error %v, policies %+v)", err, nc.Status.Policies)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func labelNode(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	node := &corev1.Node{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Name: name}, node); err != nil {
		t.Fatal(err)
	}
	node.Labels = labels
	if err := cp.Client.Update(context.Background(), node); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cp.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), obj) })
}

// createAvailableEnactment makes the NNCE nmstate's handler would make for
// node and policy, reporting Available: a fixture, since no handler runs here.
func createAvailableEnactment(t *testing.T, node, policy string) {
	t.Helper()
	nnce := &nmstatev1beta1.NodeNetworkConfigurationEnactment{
		ObjectMeta: metav1.ObjectMeta{
			Name:   nmstateshared.EnactmentKey(node, policy).Name,
			Labels: map[string]string{nmstateshared.EnactmentNodeLabel: node, nmstateshared.EnactmentPolicyLabel: policy},
		},
	}
	create(t, nnce)
	nnce.Status.Conditions.Set(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable, corev1.ConditionTrue, "SuccessfullyConfigured", "")
	if err := cp.Client.Status().Update(context.Background(), nnce); err != nil {
		t.Fatal(err)
	}
}
