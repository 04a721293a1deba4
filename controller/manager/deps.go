package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/jianfenliu/vmoperator/controller/profile"
)

// DiscoverDependencies asks the apiserver (through a REST mapper backed by
// discovery) which dependencies are installed.
func DiscoverDependencies(mapper meta.RESTMapper) (profile.Dependencies, error) {
	served := func(gvk schema.GroupVersionKind) (bool, error) {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("discover %s: %w", gvk.GroupKind(), err)
		}
		return true, nil
	}
	var deps profile.Dependencies
	var errs []error
	for _, check := range []struct {
		gvk  schema.GroupVersionKind
		flag *bool
	}{
		{schema.GroupVersionKind{Group: "kubevirt.io", Version: "v1", Kind: "VirtualMachine"}, &deps.KubeVirt},
		{schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "DataVolume"}, &deps.CDI},
		{schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}, &deps.Multus},
		{schema.GroupVersionKind{Group: "nmstate.io", Version: "v1", Kind: "NodeNetworkConfigurationPolicy"}, &deps.NMState},
	} {
		ok, err := served(check.gvk)
		*check.flag = ok
		errs = append(errs, err)
	}
	return deps, errors.Join(errs...)
}

// ErrDependenciesChanged stops the manager when an optional API was
// installed or removed after start; Run then exits cleanly so that the
// Deployment starts the process again, now watching what is served.
var ErrDependenciesChanged = errors.New("installed dependencies changed")

// DefaultDependencyInterval is how often DependencyWatch asks discovery.
const DefaultDependencyInterval = time.Minute

// DependencyWatch notices a dependency (KubeVirt, CDI, Multus, nmstate)
// installed or removed after the controller started, and then returns
// ErrDependenciesChanged, which stops the manager.
//
// Restarting was chosen over adding watches to the running controllers:
// the profile and HostNetwork reconcilers read their Dependencies without
// locks from many workers, their watches and informers are built once in
// SetupWithManager, and a removed CRD would leave an informer failing
// forever. A restart rebuilds all of it from one discovery, costs a few
// seconds once per install, and is what the Deployment does anyway.
type DependencyWatch struct {
	// Discover reads what is served now.
	Discover func() (profile.Dependencies, error)
	// Started is what the controllers were set up with.
	Started  profile.Dependencies
	Interval time.Duration
	Logger   logr.Logger
}

// Start polls discovery until the context ends or the dependencies differ
// from Started. A failed discovery is logged and retried: an apiserver
// hiccup must not restart the controller.
func (w *DependencyWatch) Start(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultDependencyInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		now, err := w.Discover()
		if err != nil {
			w.Logger.Error(err, "rediscovering dependencies")
			continue
		}
		if now != w.Started {
			w.Logger.Info("dependencies changed; stopping so that the controller restarts watching them",
				"before", fmt.Sprintf("%+v", w.Started), "now", fmt.Sprintf("%+v", now))
			return fmt.Errorf("%w: %+v, now %+v", ErrDependenciesChanged, w.Started, now)
		}
	}
}

// NeedLeaderElection is false: a standby replica restarts too, so that it
// watches what is installed when it becomes the leader.
func (w *DependencyWatch) NeedLeaderElection() bool { return false }

// freshDiscovery discovers through a new REST mapper each time: the
// manager's mapper caches what it found, including what was missing.
func freshDiscovery(config *rest.Config) func() (profile.Dependencies, error) {
	return func() (profile.Dependencies, error) {
		httpClient, err := rest.HTTPClientFor(config)
		if err != nil {
			return profile.Dependencies{}, fmt.Errorf("HTTP client for discovery: %w", err)
		}
		mapper, err := apiutil.NewDynamicRESTMapper(config, httpClient)
		if err != nil {
			return profile.Dependencies{}, fmt.Errorf("REST mapper for discovery: %w", err)
		}
		return DiscoverDependencies(mapper)
	}
}

// NewDependencyWatch watches the dependencies of the cluster config points at.
func NewDependencyWatch(config *rest.Config, started profile.Dependencies, interval time.Duration, logger logr.Logger) *DependencyWatch {
	return &DependencyWatch{Discover: freshDiscovery(config), Started: started, Interval: interval, Logger: logger}
}
