// Package simulator is a SIMULATOR, for tests and the local development
// environment only: it plays the parts of a cluster that cannot run here —
// KubeVirt's virt-controller and guest agent, CDI's importer, the PV binder
// and nmstate's handler — so that the operator's whole flow can be watched
// end to end against a real apiserver. It never ships in the binaries or the
// chart. What it does, it does simply and visibly:
//
//   - VirtualMachine → VirtualMachineInstance following the run strategy,
//     placed on a Node object that satisfies the instance's nodeSelector,
//     required node affinity and pod anti-affinity, Running once its claims
//     are bound, with interface addresses read from its cloud-init network
//     data (as the guest would configure them) or leased (DHCP);
//   - DataVolume → claim named like it, then Succeeded once the claim binds;
//   - claims → Bound (WaitForFirstConsumer classes: once an instance uses them),
//     and grown when their request grows;
//   - NodeNetworkConfigurationPolicy → Available after each spec change,
//     without touching any kernel (the development environment runs the
//     kernel-backed stand-in of package nmstatesim instead).
package simulator

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// FieldOwner marks every write of the simulator.
const FieldOwner = "vmop-simulator"

// DefaultNode is where instances run when the cluster has no Node objects.
const DefaultNode = "sim-node-0"

// Simulator runs the simulated cluster components.
type Simulator struct {
	client client.Client
	// reader reads from the apiserver, past the cache.
	reader client.Reader
	// guests caches cloud-init's rendering of each network-data: a running
	// instance reconciles again on every event, and a render costs a
	// cloud-init process (about 0.3 s) for the same answer.
	guests guestCache
	// policies are the kubernetes-nmstate behaviours the simulated nmstate plays.
	policies PolicyFidelity
}

// Option adjusts what the simulator plays.
type Option func(*settings)

type settings struct {
	withoutNMState bool
	policies       *PolicyFidelity
	renderGuest    GuestRenderer
}

// GuestRenderer says what a guest configures from a network-data document.
type GuestRenderer func(networkData string) (consumers.Rendering, error)

// WithGuestRenderer replaces cloud-init as the reader of network-data. The
// scale runs use it: one cloud-init process per profile (0.3 s of CPU each)
// would compete with the controller they measure on a 2-core machine.
func WithGuestRenderer(render GuestRenderer) Option {
	return func(s *settings) { s.renderGuest = render }
}

// WithoutNMState leaves nmstate's part out: the environment runs the
// kernel-backed stand-in (package nmstatesim) on its nodes instead.
func WithoutNMState() Option { return func(s *settings) { s.withoutNMState = true } }

// Start runs the simulator against config until ctx ends. It returns once
// its caches are synced.
func Start(ctx context.Context, config *rest.Config, options ...Option) error {
	var set settings
	for _, option := range options {
		option(&set)
	}
	mgr, err := ctrl.NewManager(config, ctrl.Options{
		Scheme:  controlplane.NewScheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return fmt.Errorf("simulator: create a manager for %s: %w", config.Host, err)
	}
	sim := &Simulator{client: mgr.GetClient(), reader: mgr.GetAPIReader(), guests: guestCache{renderer: set.renderGuest}, policies: UpstreamPolicies()}
	if set.policies != nil {
		sim.policies = *set.policies
	}
	if err := sim.setup(mgr, set); err != nil {
		return err
	}
	errs := make(chan error, 1)
	go func() { errs <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("simulator: caches did not sync: %w", <-errs)
	}
	return nil
}

func (s *Simulator) setup(mgr ctrl.Manager, set settings) error {
	parts := []func(ctrl.Manager) error{s.setupVMs, s.setupInstances, s.setupVolumes}
	if !set.withoutNMState {
		parts = append(parts, s.setupPolicies)
	}
	for _, register := range parts {
		if err := register(mgr); err != nil {
			return err
		}
	}
	return nil
}
