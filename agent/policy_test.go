//go:build integration

package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/verify"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

func nncp(name string, selector map[string]string, desired string) *nmstatev1.NodeNetworkConfigurationPolicy {
	return &nmstatev1.NodeNetworkConfigurationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
			NodeSelector: selector,
			DesiredState: nmstateshared.NewState(desired),
		},
	}
}

func bridgeState(bridge string, ports ...string) string {
	s := "interfaces:\n- name: " + bridge + "\n  type: linux-bridge\n  state: up\n  bridge:\n    port:\n"
	for _, p := range ports {
		s += "    - name: " + p + "\n"
	}
	return s
}

// createEnactment makes the NNCE nmstate's handler would make, reporting
// Available: a fixture, since no nmstate handler runs here.
func createEnactment(t *testing.T, node, policy string) {
	t.Helper()
	ctx := context.Background()
	nnce := &nmstatev1beta1.NodeNetworkConfigurationEnactment{
		ObjectMeta: metav1.ObjectMeta{
			Name:   nmstateshared.EnactmentKey(node, policy).Name,
			Labels: map[string]string{nmstateshared.EnactmentNodeLabel: node, nmstateshared.EnactmentPolicyLabel: policy},
		},
	}
	if err := cp.Client.Create(ctx, nnce); err != nil {
		t.Fatal(err)
	}
	nnce.Status.Conditions.Set(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable, corev1.ConditionTrue, "SuccessfullyConfigured", "")
	nnce.Status.Conditions.Set(nmstateshared.NodeNetworkConfigurationEnactmentConditionFailing, corev1.ConditionFalse, "SuccessfullyConfigured", "")
	if err := cp.Client.Status().Update(ctx, nnce); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(ctx, nnce) })
}

func policyStatus(nc *vmv1alpha1.NodeCapability, name string) *vmv1alpha1.PolicyVerification {
	for i := range nc.Status.Policies {
		if nc.Status.Policies[i].Name == name {
			return &nc.Status.Policies[i]
		}
	}
	return nil
}

// TestPolicyVerification: a real NNCP selecting the node, an NNCE fixture
// saying Available, and the bridge in a namespace. Verified; the bridge
// deleted → unverified with the reason within 2 s; the policy edited to want
// a missing port → unverified through the policy watch alone.
func TestPolicyVerification(t *testing.T) {
	ctx := context.Background()
	const node = "node-policy"
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"vmop-test/role": "vm"}}}
	if err := cp.Client.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(ctx, n) })
	mine := nncp("br-pol", map[string]string{"vmop-test/role": "vm"}, bridgeState("br-pol", "pol-p0"))
	other := nncp("elsewhere", map[string]string{"vmop-test/role": "db"}, bridgeState("br-other"))
	for _, p := range []*nmstatev1.NodeNetworkConfigurationPolicy{mine, other} {
		if err := cp.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Client.Delete(ctx, p) })
	}
	createEnactment(t, node, mine.Name)

	ns := netnstest.New(t)
	ns.Bridge(t, "br-pol")
	ns.VethPair(t, "pol-p0", "pol-q0", "br-pol")

	verifier, err := verify.NewVerifier(cp.Config, cp.Scheme, node)
	if err != nil {
		t.Fatal(err)
	}
	cfg := watch.Config{Debounce: 500 * time.Millisecond, MinInterval: 2 * time.Second, Resync: time.Hour}
	vctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	startAgentWith(t, node, ns, cfg, func(w *watch.Watcher) {
		if err := verifier.OnChange(vctx, w.Kick); err != nil {
			t.Fatal(err)
		}
		if err := verifier.Start(vctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}, WithPolicyVerifier(verifier))

	waitStored(t, node, 10*time.Second, "br-pol verified", func(nc *vmv1alpha1.NodeCapability) bool {
		p := policyStatus(nc, "br-pol")
		return p != nil && p.Verified && p.Enactment == "Available" && len(nc.Status.Policies) == 1
	})
	t.Logf("verified: %+v", *policyStatus(stored(t, node), "br-pol"))

	time.Sleep(cfg.MinInterval)
	deleted := time.Now()
	ns.Delete(t, "br-pol")
	const want = "nmstate reports Available but bridge br-pol does not exist"
	seen := waitStored(t, node, 10*time.Second, "br-pol unverified", func(nc *vmv1alpha1.NodeCapability) bool {
		p := policyStatus(nc, "br-pol")
		return p != nil && !p.Verified && p.Message == want
	})
	t.Logf("bridge deleted → unverified in the stored NodeCapability after %v", seen.Sub(deleted))
	if d := seen.Sub(deleted); d > 2*time.Second {
		t.Errorf("unverified after %v, want within 2s", d)
	}
	nc := stored(t, node)
	if c := findCondition(nc, vmv1alpha1.ConditionNetworkReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != vmv1alpha1.ReasonPolicyUnverified || !strings.Contains(c.Message, want) {
		t.Errorf("NetworkReady = %+v, want False/PolicyUnverified naming the missing bridge", c)
	}

	// Put the bridge back, then change only the policy: the informer, not
	// netlink, must bring the new verdict.
	ns.Bridge(t, "br-pol")
	ns.Enslave(t, "pol-p0", "br-pol")
	waitStored(t, node, 10*time.Second, "br-pol verified again", func(nc *vmv1alpha1.NodeCapability) bool {
		p := policyStatus(nc, "br-pol")
		return p != nil && p.Verified
	})
	time.Sleep(cfg.MinInterval)
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(mine), mine); err != nil {
		t.Fatal(err)
	}
	mine.Spec.DesiredState = nmstateshared.NewState(bridgeState("br-pol", "pol-p0", "pol-p9"))
	if err := cp.Client.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	waitStored(t, node, 10*time.Second, "br-pol unverified for the missing port", func(nc *vmv1alpha1.NodeCapability) bool {
		p := policyStatus(nc, "br-pol")
		return p != nil && !p.Verified && strings.Contains(p.Message, "port pol-p9 of bridge br-pol does not exist")
	})
}

func findCondition(nc *vmv1alpha1.NodeCapability, typ string) *metav1.Condition {
	for i := range nc.Status.Conditions {
		if nc.Status.Conditions[i].Type == typ {
			return &nc.Status.Conditions[i]
		}
	}
	return nil
}
