package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/jianfenliu/vmoperator/controller/manager"
	vmprofile "github.com/jianfenliu/vmoperator/controller/profile"
)

// TestDependencyWatchAgainstAPIServer: against the real apiserver's
// discovery, the watch keeps running while what it started with is what is
// served, and stops the manager (so the process exits and is restarted)
// when it differs, here as if CDI had been installed after the start.
func TestDependencyWatchAgainstAPIServer(t *testing.T) {
	served := manager.NewDependencyWatch(cluster.Config, vmprofile.Dependencies{}, 0, logr.Discard())
	now, err := served.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if !now.KubeVirt || !now.CDI || !now.Multus {
		t.Fatalf("the suite serves KubeVirt, CDI and Multus, discovery says %+v", now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	unchanged := manager.NewDependencyWatch(cluster.Config, now, 20*time.Millisecond, logr.Discard())
	if err := unchanged.Start(ctx); err != nil {
		t.Fatalf("nothing changed, yet the watch stopped: %v", err)
	}
	before := now
	before.CDI = false // started before CDI was installed
	installed := manager.NewDependencyWatch(cluster.Config, before, 20*time.Millisecond, logr.Discard())
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := installed.Start(ctx); !errors.Is(err, manager.ErrDependenciesChanged) {
		t.Fatalf("CDI appeared, the watch returned %v, want ErrDependenciesChanged", err)
	}
}
