package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func TestProfilesByPhaseAndTimeToReady(t *testing.T) {
	scheme := k8sruntime.NewScheme()
	if err := vmv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	profile := func(name string, phase vmv1alpha1.Phase) *vmv1alpha1.VirtualMachineProfile {
		return &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
			Status: vmv1alpha1.VirtualMachineProfileStatus{Phase: phase}}
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		profile("a", vmv1alpha1.PhaseRunning), profile("b", vmv1alpha1.PhaseRunning),
		profile("c", vmv1alpha1.PhaseError), profile("new", ""),
	).Build()
	registry := prometheus.NewRegistry()
	m, err := NewController(registry, reader)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveTimeToReady(12 * time.Second)
	expected := `
# HELP vmop_profiles VirtualMachineProfiles by phase.
# TYPE vmop_profiles gauge
vmop_profiles{phase="Creating"} 0
vmop_profiles{phase="Error"} 1
vmop_profiles{phase="Pending"} 1
vmop_profiles{phase="Running"} 2
vmop_profiles{phase="Stopped"} 0
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(expected), "vmop_profiles"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.timeToReady); n != 1 {
		t.Fatalf("histogram series: %d", n)
	}
	if _, err := NewController(registry, reader); err == nil {
		t.Fatal("registering twice on one registry must fail, not silently double count")
	}
}
