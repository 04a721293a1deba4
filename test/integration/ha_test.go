package integration

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestAntiAffinitySpreadsProfiles is the seed's HA scenario: three profiles
// with antiAffinity land on three distinct nodes; a fourth cannot be placed
// and says why; restartPolicy OnFailure becomes RerunOnFailure.
func TestAntiAffinitySpreadsProfiles(t *testing.T) {
	ns := newNamespace(t)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("rack-%d", i)
		if err := addNode(context.Background(), cluster.Client, name, map[string]string{"zone": "ha-test"}, fullCapability()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cluster.Client.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
		})
	}
	ha := func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{
			RestartPolicy: vmv1alpha1.RestartOnFailure, AntiAffinity: true,
			NodeSelector: map[string]vmv1alpha1.LabelValue{"zone": "ha-test"},
		}
	}
	nodes := map[string]string{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("ha-%d", i)
		create(t, profile(name, ns, ha))
		p := waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
		if other, taken := nodes[p.Status.NodeName]; taken {
			t.Fatalf("%s and %s share node %s", name, other, p.Status.NodeName)
		}
		nodes[p.Status.NodeName] = name
	}
	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "ha-1-vm")
	if *vm.Spec.RunStrategy != kubevirtv1.RunStrategyRerunOnFailure {
		t.Fatalf("restartPolicy OnFailure gave run strategy %s", *vm.Spec.RunStrategy)
	}
	create(t, profile("ha-4", ns, ha))
	p := waitForCondition(t, ns, "ha-4", vmv1alpha1.ConditionScheduled, metav1.ConditionFalse, vmv1alpha1.ReasonTooFewNodes)
	if p.Status.Phase == vmv1alpha1.PhaseRunning {
		t.Fatalf("fourth profile running: %s", observe.Describe(p))
	}
	t.Logf("fourth profile: %s", observe.Describe(p))
}
