package controllermetrics

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestControllerMetrics: profiles by phase and agent Lease expiries from the
// leader only, the leader gauge on every replica, build info, time to Ready.
func TestControllerMetrics(t *testing.T) {
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := vmv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	profile := func(name string, phase vmv1alpha1.Phase, ready metav1.ConditionStatus, reason string) *vmv1alpha1.VirtualMachineProfile {
		p := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
			Status: vmv1alpha1.VirtualMachineProfileStatus{Phase: phase}}
		if ready != "" {
			p.Status.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionReady, Status: ready, Reason: reason}}
		}
		return p
	}
	node := func(name string) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: name, UID: "uid-" + types.UID(name)}
	}
	renewed := metav1.NewMicroTime(time.Unix(1_800_000_000, 0))
	lease := func(name string, owners ...metav1.OwnerReference) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "vmop-system", OwnerReferences: owners},
			Spec: coordinationv1.LeaseSpec{RenewTime: &renewed, LeaseDurationSeconds: ptr.To(int32(40))}}
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		profile("a", vmv1alpha1.PhaseRunning, metav1.ConditionTrue, "Running"),
		profile("b", vmv1alpha1.PhaseRunning, metav1.ConditionTrue, "Running"),
		profile("c", vmv1alpha1.PhaseError, metav1.ConditionFalse, "QuotaExceeded"),
		profile("d", vmv1alpha1.PhasePending, metav1.ConditionFalse, "NoEligibleNodes"),
		profile("e", vmv1alpha1.PhasePending, metav1.ConditionFalse, "NoEligibleNodes"),
		profile("new", "", "", ""),
		lease("node-a", node("node-a")), lease("node-b", node("node-b")),
		lease("vmop-controller.vm.example.com"), // the leader election's: no Node owner
		lease("other", node("node-x")),          // owned by another node than it names
	).Build()
	leading := false
	registry := prometheus.NewRegistry()
	m, err := NewController(registry, ControllerInputs{Reader: reader, Leading: func() bool { return leading },
		LeaseNamespace: "vmop-system", Version: "v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveTimeToReady(12 * time.Second)

	// A replica that does not lead exports no cluster counts, so alerts on
	// them fire once, not once per replica.
	follower := `
# HELP vmop_controller_leader 1 on the replica that leads (reconciles), 0 on the others.
# TYPE vmop_controller_leader gauge
vmop_controller_leader 0
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(follower),
		"vmop_controller_leader", "vmop_profiles", "vmop_profiles_not_ready", "vmop_agent_lease_expiry_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}

	leading = true
	leader := `
# HELP vmop_agent_lease_expiry_timestamp_seconds When each node's vmop-agent Lease lapses unless renewed (Unix time; exported by the leader only).
# TYPE vmop_agent_lease_expiry_timestamp_seconds gauge
vmop_agent_lease_expiry_timestamp_seconds{node="node-a"} 1.80000004e+09
vmop_agent_lease_expiry_timestamp_seconds{node="node-b"} 1.80000004e+09
# HELP vmop_controller_leader 1 on the replica that leads (reconciles), 0 on the others.
# TYPE vmop_controller_leader gauge
vmop_controller_leader 1
# HELP vmop_profiles VirtualMachineProfiles by phase (exported by the leader only).
# TYPE vmop_profiles gauge
vmop_profiles{phase="Creating"} 0
vmop_profiles{phase="Error"} 1
vmop_profiles{phase="Pending"} 3
vmop_profiles{phase="Running"} 2
vmop_profiles{phase="Stopped"} 0
# HELP vmop_profiles_not_ready VirtualMachineProfiles whose Ready condition is not True, by its reason (NoEligibleNodes for placement; exported by the leader only).
# TYPE vmop_profiles_not_ready gauge
vmop_profiles_not_ready{reason="NoEligibleNodes"} 2
vmop_profiles_not_ready{reason="NotObservedYet"} 1
vmop_profiles_not_ready{reason="QuotaExceeded"} 1
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(leader),
		"vmop_controller_leader", "vmop_profiles", "vmop_profiles_not_ready", "vmop_agent_lease_expiry_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	buildInfo := fmt.Sprintf(`
# HELP vmop_controller_build_info Always 1; labels say which vmop-controller build runs.
# TYPE vmop_controller_build_info gauge
vmop_controller_build_info{goversion=%q,version="v9.9.9"} 1
`, runtime.Version())
	if err := testutil.GatherAndCompare(registry, strings.NewReader(buildInfo), "vmop_controller_build_info"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.timeToReady); n != 1 {
		t.Fatalf("histogram series: %d", n)
	}
	if _, err := NewController(registry, ControllerInputs{Reader: reader, Leading: func() bool { return true }}); err == nil {
		t.Fatal("registering twice on one registry must fail, not silently double count")
	}
}
