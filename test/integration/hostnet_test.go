package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

func onUplink(bridge, uplink string, vlan int32) func(*vmv1alpha1.VirtualMachineProfile) {
	return func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.Networks[0].BridgeName = bridge
		p.Spec.Networks[0].Uplink = uplink
		p.Spec.Networks[0].VLANID = ptr.To(vlan)
	}
}

func policyState(t *testing.T, name string) (string, bool) {
	t.Helper()
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &policy)
	if err != nil {
		return "", false
	}
	// nmstate keeps the state as YAML; compare it as compact JSON.
	state, err := yaml.YAMLToJSON(policy.Spec.DesiredState.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return string(state), true
}

// TestSharedHostNetworkPolicy: profiles on one bridge share one policy that
// trunks the union of their VLANs; the last one to go removes the bridge
// from the hosts (state absent) before the policy is deleted.
func TestSharedHostNetworkPolicy(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, profile("edge-a", ns, onUplink("br-edge", "bond0", 300)))
	waitForPhase(t, ns, "edge-a", vmv1alpha1.PhaseRunning)
	state, ok := policyState(t, "vmop-br-edge")
	if !ok || !strings.Contains(state, `"trunk-tags":[{"id":300}]`) || !strings.Contains(state, `"name":"bond0"`) {
		t.Fatalf("policy after the first user: %s", state)
	}
	create(t, profile("edge-b", ns, onUplink("br-edge", "bond0", 301)))
	waitForPhase(t, ns, "edge-b", vmv1alpha1.PhaseRunning)
	observe.Eventually(t, 30*time.Second, "VLANs of both users trunked", func() (bool, string) {
		state, _ := policyState(t, "vmop-br-edge")
		return strings.Contains(state, `"trunk-tags":[{"id":300},{"id":301}]`), state
	})

	if err := cluster.Client.Delete(ctx, getProfile(t, ns, "edge-a")); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "only edge-b's VLAN left", func() (bool, string) {
		state, _ := policyState(t, "vmop-br-edge")
		return strings.Contains(state, `"trunk-tags":[{"id":301}]`), state
	})

	// Watch, not poll: every state the policy goes through is seen.
	watcher, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	events, err := watcher.Watch(ctx, &nmstatev1.NodeNetworkConfigurationPolicyList{}, client.MatchingFields{"metadata.name": "vmop-br-edge"})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Stop()
	sawAbsent := make(chan bool, 1)
	go func() {
		absent := false
		for event := range events.ResultChan() {
			policy, ok := event.Object.(*nmstatev1.NodeNetworkConfigurationPolicy)
			if !ok {
				continue
			}
			state, _ := yaml.YAMLToJSON(policy.Spec.DesiredState.Raw)
			absent = absent || strings.Contains(string(state), `"state":"absent"`)
			if event.Type == watch.Deleted {
				sawAbsent <- absent
				return
			}
		}
		sawAbsent <- false
	}()
	if err := cluster.Client.Delete(ctx, getProfile(t, ns, "edge-b")); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "policy deleted after the last user", func() (bool, string) {
		_, exists := policyState(t, "vmop-br-edge")
		return !exists, "policy still present"
	})
	select {
	case absent := <-sawAbsent:
		if !absent {
			t.Fatal("the policy was deleted without first applying state: absent")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no deletion seen on the watch")
	}
}

// TestHostNetworkConflict: two profiles wanting one bridge on different
// uplinks cannot share it; the conflict is reported, nothing is guessed.
func TestHostNetworkConflict(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("left", ns, onUplink("br-split", "eth1", 10)))
	waitForPhase(t, ns, "left", vmv1alpha1.PhaseRunning)
	create(t, profile("right", ns, onUplink("br-split", "eth2", 11)))
	p := waitForPhase(t, ns, "right", vmv1alpha1.PhaseError)
	if !strings.Contains(observe.Describe(p), "eth1") || !strings.Contains(observe.Describe(p), "eth2") {
		t.Fatalf("conflict message should name both uplinks: %s", observe.Describe(p))
	}
	expectEvent(t, ns, "right", vmv1alpha1.ReasonHostNetworkFailed)
}
