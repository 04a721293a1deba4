package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/test/observe"
)

// leaderLease is the Lease vmop-controller's replicas elect their leader with.
const leaderLease = "vmop-controller.vm.example.com"

// TestControllerLeadsUnderItsRole: with only its generated role, the
// controller takes the leader Lease, records the election in the release
// namespace, and hands the Lease back when it stops, so the next replica
// (here: the restarted controller) leads at once, not after the lease
// duration.
func TestControllerLeadsUnderItsRole(t *testing.T) {
	ctx := context.Background()
	holder := func() string {
		var lease coordinationv1.Lease
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: leaseNamespace, Name: leaderLease}, &lease); err != nil || lease.Spec.HolderIdentity == nil {
			return ""
		}
		return *lease.Spec.HolderIdentity
	}
	observe.Eventually(t, 30*time.Second, "the controller holds the leader Lease", func() (bool, string) {
		h := holder()
		return h != "", "holder " + h
	})
	first := holder()
	expectElectionEvent(t, first)

	restart := withControllerStopped(t)
	if h := holder(); h != "" {
		t.Fatalf("the stopped controller kept the Lease (holder %q): the next replica would wait out the lease duration", h)
	}
	started := time.Now()
	restart()
	observe.Eventually(t, 30*time.Second, "the restarted controller leads", func() (bool, string) {
		h := holder()
		return h != "" && h != first, "holder " + h
	})
	t.Logf("the restarted controller led after %v", time.Since(started).Round(time.Millisecond))
	expectElectionEvent(t, holder())
}

// expectElectionEvent waits for the core Event leader election records
// when identity becomes leader (it fails to be written without the
// controller's events permission in the release namespace).
func expectElectionEvent(t *testing.T, identity string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("election event for %s", identity), func() (bool, string) {
		var list corev1.EventList
		if err := cluster.Client.List(context.Background(), &list, client.InNamespace(leaseNamespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Reason == "LeaderElection" && e.InvolvedObject.Name == leaderLease {
				if strings.Contains(e.Message, identity+" became leader") {
					return true, ""
				}
				seen = append(seen, e.Message)
			}
		}
		return false, fmt.Sprintf("election events: %v", seen)
	})
}
