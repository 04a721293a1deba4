//go:build integration

package manager_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// lines collects what a logger writes, one line each.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, prefix+" "+args)
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// TestLeaderLogSaysWhoLeads: a replica logs that no one leads while the
// Lease is missing, which pod leads when another takes the Lease, and that
// it leads itself when it takes it: each change once, renewals not at all.
func TestLeaderLogSaysWhoLeads(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const namespace = "vmoperator-system"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	var logged lines
	leaderLog := &manager.LeaderLog{Config: cp.Config, Namespace: namespace, Name: manager.LeaderElectionID,
		Self: "vmoperator-controller-manager-b", Logger: funcr.New(logged.add, funcr.Options{})}
	done := make(chan error, 1)
	go func() { done <- leaderLog.Start(ctx) }()

	waitFor := func(want string, count int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := logged.snapshot()
			if len(got) == count && strings.Contains(got[count-1], want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("want log line %d to say %q; logged:\n%s", count, want, strings.Join(got, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("no replica leads yet", 1)

	holder := "vmoperator-controller-manager-a_1b2c"
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: manager.LeaderElectionID},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}
	if err := cp.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	waitFor(`this replica follows; the leader's log shows the reconciling: kubectl logs -n vmoperator-system vmoperator-controller-manager-a"`, 2)
	if got := logged.snapshot()[1]; !strings.Contains(got, `"leader"="vmoperator-controller-manager-a"`) {
		t.Errorf("the follower's line does not name the leader pod: %s", got)
	}

	// A renewal keeps the holder: nothing to log.
	renew(t, cp.Client, lease, holder)
	newHolder := "vmoperator-controller-manager-b_3d4e"
	renew(t, cp.Client, lease, newHolder)
	waitFor("this replica leads", 3)

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Start returned %v", err)
	}
}

func renew(t *testing.T, c client.Client, lease *coordinationv1.Lease, holder string) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.HolderIdentity, lease.Spec.RenewTime = &holder, &now
	if err := c.Update(context.Background(), lease); err != nil {
		t.Fatal(fmt.Errorf("renew Lease as %s: %w", holder, err))
	}
}
