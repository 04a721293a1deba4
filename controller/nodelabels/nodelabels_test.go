package nodelabels

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

func TestPlanLabels(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	grace := 2 * time.Minute
	bridge, kvm, reporting := placement.BridgeLabel("br-mgmt"), vmv1alpha1.LabelKVM, vmv1alpha1.LabelReporting
	current := map[string]string{bridge: "true", kvm: "true", reporting: "true", "kubernetes.io/arch": "amd64"}
	cases := []struct {
		name        string
		since       map[string]time.Time
		offered     map[string]string
		reporting   bool
		wantLabels  []string
		wantPending []string
	}{
		{"everything still offered", nil, map[string]string{bridge: "true", kvm: "true", reporting: "true"}, true,
			[]string{bridge, kvm, reporting}, nil},
		{"bridge vanished: kept during grace", nil, map[string]string{kvm: "true", reporting: "true"}, true,
			[]string{bridge, kvm, reporting}, []string{bridge}},
		{"bridge vanished long ago: removed", map[string]time.Time{bridge: now.Add(-3 * time.Minute)}, map[string]string{kvm: "true", reporting: "true"}, true,
			[]string{kvm, reporting}, nil},
		{"bridge came back: grace cancelled", map[string]time.Time{bridge: now.Add(-time.Minute)}, map[string]string{bridge: "true", kvm: "true", reporting: "true"}, true,
			[]string{bridge, kvm, reporting}, nil},
		{"agent silent: only the reporting label goes", map[string]time.Time{bridge: now.Add(-time.Hour)}, nil, false,
			[]string{bridge, kvm}, []string{bridge}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planLabels(current, c.since, c.offered, c.reporting, now, grace)
			if len(p.labels) != len(c.wantLabels) {
				t.Fatalf("labels %v, want %v", p.labels, c.wantLabels)
			}
			for _, key := range c.wantLabels {
				if p.labels[key] != "true" {
					t.Errorf("label %s missing: %v", key, p.labels)
				}
			}
			if _, ok := p.labels["kubernetes.io/arch"]; ok {
				t.Error("labels outside the prefix are not the controller's to plan")
			}
			if len(p.absentSince) != len(c.wantPending) {
				t.Fatalf("pending %v, want %v", p.absentSince, c.wantPending)
			}
		})
	}
	// The grace period ends are timers: the next check comes when the first ends.
	p := planLabels(current, nil, map[string]string{kvm: "true"}, true, now, grace)
	if got := p.nextCheck(now, now.Add(time.Hour), true); got < grace || got > grace+time.Second {
		t.Fatalf("next check in %v", got)
	}
}

func TestLeaseEventsThatMatter(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	r := &Reconciler{LeaseNamespace: "vmop-system", Now: func() time.Time { return now }}
	lease := func(namespace string, renewed time.Time, seconds int32) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "node-a", Namespace: namespace},
			Spec:       coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: renewed}, LeaseDurationSeconds: &seconds},
		}
	}
	cases := []struct {
		name     string
		old, new *coordinationv1.Lease
		want     bool
	}{
		{"routine renewal", lease("vmop-system", now.Add(-10*time.Second), 40), lease("vmop-system", now, 40), false},
		{"renewal after a lapse", lease("vmop-system", now.Add(-time.Minute), 40), lease("vmop-system", now, 40), true},
		{"shorter duration brings the expiry closer", lease("vmop-system", now.Add(-time.Second), 3600), lease("vmop-system", now, 3), true},
		{"another namespace", lease("kube-node-lease", now.Add(-time.Minute), 40), lease("kube-node-lease", now, 40), false},
	}
	predicate := r.leaseRevived()
	for _, c := range cases {
		if got := predicate.Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestPendingRemovalIsWrittenOnce: a label whose capability vanished gets
// its grace bookkeeping written once, and an unchanged plan writes nothing
// (comparing the bookkeeping once panicked on time.Time).
func TestPendingRemovalIsWrittenOnce(t *testing.T) {
	gone := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := map[string]time.Time{"cap.vm.example.com/vlan.br-mgmt.100": gone}
	b := map[string]time.Time{"cap.vm.example.com/vlan.br-mgmt.100": gone.In(time.FixedZone("x", 3600))}
	if !sameTimes(a, b) || sameTimes(a, nil) || !sameTimes(nil, map[string]time.Time{}) {
		t.Fatal("grace bookkeeping compares by instant, and empty equals absent")
	}
}
