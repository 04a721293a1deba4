package manager

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/jianfenliu/vmoperator/controller/profile"
)

// mapper serves the kinds of the groups it lists, and fails for failing.
type mapper struct {
	meta.RESTMapper
	served  map[string]bool
	failing string
}

func (m mapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if gk.Group == m.failing {
		return nil, errors.New("discovery of " + gk.Group + " timed out")
	}
	if !m.served[gk.Group] {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return &meta.RESTMapping{GroupVersionKind: gk.WithVersion(versions[0])}, nil
}

func TestDiscoverDependencies(t *testing.T) {
	deps, err := DiscoverDependencies(mapper{served: map[string]bool{"kubevirt.io": true, "nmstate.io": true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (profile.Dependencies{KubeVirt: true, NMState: true}); deps != want {
		t.Fatalf("got %+v, want %+v", deps, want)
	}
	// A group that cannot be discovered is an error, not "not installed":
	// the controller would otherwise start without its watches.
	deps, err = DiscoverDependencies(mapper{served: map[string]bool{"kubevirt.io": true}, failing: "cdi.kubevirt.io"})
	if err == nil || deps.CDI {
		t.Fatalf("got %+v, %v; want an error and no CDI", deps, err)
	}
}

// TestDependencyWatchStopsOnChange: the watch keeps running while nothing
// changes or discovery fails, and stops the manager (with
// ErrDependenciesChanged) once a dependency appears.
func TestDependencyWatchStopsOnChange(t *testing.T) {
	started := profile.Dependencies{KubeVirt: true}
	var polls atomic.Int32
	watch := &DependencyWatch{Started: started, Interval: time.Millisecond, Logger: logr.Discard(),
		Discover: func() (profile.Dependencies, error) {
			switch n := polls.Add(1); {
			case n < 5:
				return started, nil
			case n < 8:
				return profile.Dependencies{}, errors.New("apiserver unavailable")
			default:
				return profile.Dependencies{KubeVirt: true, CDI: true}, nil // CDI installed
			}
		}}
	err := watch.Start(context.Background())
	if !errors.Is(err, ErrDependenciesChanged) {
		t.Fatalf("got %v, want ErrDependenciesChanged", err)
	}
	if polls.Load() != 8 {
		t.Fatalf("stopped after %d polls, want 8 (unchanged and failed polls keep it running)", polls.Load())
	}
	if watch.NeedLeaderElection() {
		t.Fatal("standby replicas must restart too")
	}
}

func TestDependencyWatchEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	watch := &DependencyWatch{Interval: time.Millisecond, Logger: logr.Discard(),
		Discover: func() (profile.Dependencies, error) { cancel(); return profile.Dependencies{}, nil }}
	if err := watch.Start(ctx); err != nil {
		t.Fatalf("got %v, want nil once the context ends", err)
	}
}
