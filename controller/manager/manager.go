// Package manager wires vmop-controller: the controller-runtime manager with
// leader election, probes and metrics, dependency discovery, and the
// profile, HostNetwork and node-label reconcilers. cmd/vmop-controller only parses flags and calls Run; tests and
// the local environment call New and start the manager themselves.
package manager

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/hostnetwork"
	"github.com/jianfenliu/vmoperator/controller/nodelabels"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/controller/profile"
	"github.com/jianfenliu/vmoperator/metrics/controllermetrics"
	"github.com/jianfenliu/vmoperator/metrics/secure"
	"github.com/jianfenliu/vmoperator/version"
)

// Options configure vmop-controller.
type Options struct {
	// MetricsAddress is where /metrics listens; "0" turns it off.
	MetricsAddress string
	// InsecureMetrics serves /metrics over plain HTTP to anyone, for a
	// developer's `make run` on loopback; otherwise it is HTTPS, and only
	// a bearer token the apiserver authenticates and authorizes for GET
	// /metrics is served.
	InsecureMetrics bool
	// MetricsCertDir holds tls.crt and tls.key of /metrics; empty means
	// a self-signed certificate made at start.
	MetricsCertDir          string
	ProbeAddress            string
	LeaderElection          bool
	LeaderElectionNamespace string
	DefaultSRIOVResource    string
	// LeaseNamespace holds the agents' per-node Leases (agent liveness).
	LeaseNamespace string
	// AllowEmulation places VMs on nodes without usable KVM, for KubeVirt
	// configured with useEmulation: true.
	AllowEmulation bool
	// LabelGrace is how long a node keeps a capability label after the
	// capability disappeared.
	LabelGrace time.Duration
	Logger     logr.Logger
	// MetricsRegistry receives vmop's own metrics; nil means controller-runtime's
	// registry, which the metrics endpoint serves.
	MetricsRegistry prometheus.Registerer
	// AllowUndeclaredHostNetworks lets profiles attach to host bridges and
	// links no HostNetwork declares (single-tenant clusters). Off by default.
	AllowUndeclaredHostNetworks bool
	// SharedNADNamespaces are the namespaces a nadName may point into
	// besides the profile's own.
	SharedNADNamespaces []string
	// HostNetworkRevertTimeout bounds how long deleting a managed
	// HostNetwork waits for nmstate to revert the host side.
	HostNetworkRevertTimeout time.Duration
	// SkipControllerNameValidation lets one process start the controller
	// more than once (tests that stop and restart it).
	SkipControllerNameValidation bool
	// LeaderElectionTiming overrides controller-runtime's lease timing
	// (15 s lease, 10 s renew deadline, 2 s retry) where set.
	LeaderElectionTiming LeaderElectionTiming
	// ClientQPS and ClientBurst limit the controller's requests to the
	// apiserver; 0 keeps the limits of the given config.
	ClientQPS   float32
	ClientBurst int
	// ProfileWorkers is how many profiles reconcile at once; 0 means 1.
	ProfileWorkers int
	// StatusInterval is the least time between two progress-only status
	// writes of one profile; 0 writes every change at once.
	StatusInterval time.Duration
	// DependencyInterval is how often the controller asks discovery whether
	// KubeVirt, CDI, Multus or nmstate was installed or removed since it
	// started; when so, Run returns nil so that the Deployment restarts it
	// (DependencyWatch). 0 means DefaultDependencyInterval.
	DependencyInterval time.Duration
	// CapabilityWakeInterval is the least time between two re-queues of
	// profiles (and of HostNetworks) caused by one node's capability or
	// label changes; later changes are delivered at its end. 0 re-queues
	// on every change.
	CapabilityWakeInterval time.Duration
}

// LeaderElectionTiming is how long a leader's Lease lasts, how long it
// keeps trying to renew before it steps down, and how often candidates try.
type LeaderElectionTiming struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func optionalDuration(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}

// LeaderElectionID names the Lease the controller's replicas elect a leader with.
const LeaderElectionID = "vmop-controller.vm.example.com"

// DefaultLeaseNamespace is where agents renew their per-node Leases.
const DefaultLeaseNamespace = "vmop-system"

// NewScheme knows every type vmop-controller reads or writes.
func NewScheme() *k8sruntime.Scheme {
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(vmv1alpha1.AddToScheme(scheme))
	utilruntime.Must(kubevirtv1.AddToScheme(scheme))
	utilruntime.Must(cdiv1.AddToScheme(scheme))
	utilruntime.Must(nadv1.AddToScheme(scheme))
	utilruntime.Must(nmstatev1.AddToScheme(scheme))
	utilruntime.Must(nmstatev1beta1.AddToScheme(scheme))
	return scheme
}

// New builds the manager with the profile controllers registered.
func New(config *rest.Config, options Options) (ctrl.Manager, error) {
	ctrl.SetLogger(options.Logger)
	scheme := NewScheme()
	if options.LeaseNamespace == "" {
		options.LeaseNamespace = DefaultLeaseNamespace
	}
	config = rest.CopyConfig(config)
	if options.ClientQPS != 0 {
		config.QPS = options.ClientQPS
	}
	if options.ClientBurst != 0 {
		config.Burst = options.ClientBurst
	}
	metricsOptions, certWatcher, err := metricsServer(options)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(config, ctrl.Options{
		Scheme: scheme,
		// Only the agents' Leases: every node also has one in kube-node-lease.
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{options.LeaseNamespace: {}}},
			},
			DefaultTransform: stripManagedFields,
		},
		Metrics:                 metricsOptions,
		HealthProbeBindAddress:  options.ProbeAddress,
		LeaderElection:          options.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: options.LeaderElectionNamespace,
		// Run returns (and the process exits) once the manager stopped, so
		// handing the Lease back on shutdown is safe, and a rolling update's
		// new replica leads at once instead of after the lease duration.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 optionalDuration(options.LeaderElectionTiming.LeaseDuration),
		RenewDeadline:                 optionalDuration(options.LeaderElectionTiming.RenewDeadline),
		RetryPeriod:                   optionalDuration(options.LeaderElectionTiming.RetryPeriod),
		Logger:                        options.Logger,
		Controller:                    ctrlconfig.Controller{SkipNameValidation: &options.SkipControllerNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("manager for %s: %w", config.Host, err)
	}
	if certWatcher != nil {
		// Every replica serves metrics, so the watcher runs without the
		// lead (it says so itself: NeedLeaderElection is false).
		if err := mgr.Add(certWatcher); err != nil {
			return nil, fmt.Errorf("add the metrics certificate watcher: %w", err)
		}
	}
	if options.LeaderElection {
		if err := addLeaderLog(mgr, config, options); err != nil {
			return nil, err
		}
	}
	deps, err := DiscoverDependencies(mgr.GetRESTMapper())
	if err != nil {
		return nil, fmt.Errorf("discover installed APIs: %w", err)
	}
	options.Logger.Info("discovered dependencies", "kubevirt", deps.KubeVirt, "cdi", deps.CDI, "multus", deps.Multus, "nmstate", deps.NMState)
	if err := mgr.Add(NewDependencyWatch(config, deps, options.DependencyInterval, options.Logger)); err != nil {
		return nil, fmt.Errorf("add the dependency watch: %w", err)
	}
	registry := options.MetricsRegistry
	if registry == nil {
		registry = ctrlmetrics.Registry
	}
	controllerMetrics, err := controllermetrics.NewController(registry, controllermetrics.ControllerInputs{
		Reader:         mgr.GetClient(),
		Leading:        electedFunc(mgr.Elected()),
		LeaseNamespace: options.LeaseNamespace,
		Version:        version.Version,
	})
	if err != nil {
		return nil, err
	}
	networks := attach.Policy{
		AllowUndeclared:      options.AllowUndeclaredHostNetworks,
		SharedNADNamespaces:  options.SharedNADNamespaces,
		DefaultSRIOVResource: options.DefaultSRIOVResource,
	}
	index := placement.NewIndex()
	recording, err := startEventRecording(mgr, config)
	if err != nil {
		return nil, err
	}
	recorder := recording.broadcaster.NewRecorder(scheme, "vmop-controller")
	reconciler := &profile.Reconciler{
		Client:                 mgr.GetClient(),
		APIReader:              mgr.GetAPIReader(),
		Scheme:                 scheme,
		Recorder:               recorder,
		Deps:                   deps,
		Networks:               networks,
		Index:                  index,
		LeaseNamespace:         options.LeaseNamespace,
		AllowEmulation:         options.AllowEmulation,
		Ready:                  controllerMetrics,
		Workers:                options.ProfileWorkers,
		StatusInterval:         options.StatusInterval,
		CapabilityWakeInterval: options.CapabilityWakeInterval,
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	hostNetworks := &hostnetwork.Reconciler{Client: mgr.GetClient(), Recorder: recorder, NMState: deps.NMState, KubeVirt: deps.KubeVirt,
		Networks: networks, RevertTimeout: options.HostNetworkRevertTimeout, CapabilityWakeInterval: options.CapabilityWakeInterval}
	if err := hostNetworks.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	labeller := &nodelabels.Reconciler{Client: mgr.GetClient(), LeaseNamespace: options.LeaseNamespace, Grace: options.LabelGrace, Index: index}
	if err := labeller.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add readyz check: %w", err)
	}
	return mgr, nil
}

// metricsServer serves /metrics over HTTPS to authorized scrapers only
// (kubebuilder's secure metrics): controller-runtime's authentication and
// authorization filter asks the apiserver to review each new bearer token
// and whether its user may GET /metrics. The returned watcher, when not
// nil, keeps a mounted certificate current and must run with the manager.
func metricsServer(options Options) (metricsserver.Options, *certwatcher.CertWatcher, error) {
	if options.InsecureMetrics || options.MetricsAddress == "0" {
		return metricsserver.Options{BindAddress: options.MetricsAddress}, nil, nil
	}
	cert, err := secure.LoadCertificate(options.MetricsCertDir, "vmop-controller")
	if err != nil {
		return metricsserver.Options{}, nil, err
	}
	return metricsserver.Options{
		BindAddress:    options.MetricsAddress,
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
		TLSOpts:        []func(*tls.Config){secure.ConfigureTLS(cert)},
	}, cert.Watcher, nil
}

// Run starts vmop-controller against the cluster in $KUBECONFIG, --kubeconfig
// or the pod's service account, until SIGTERM or SIGINT.
func Run(options Options) error {
	config, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, err := New(config, options)
	if err != nil {
		return err
	}
	err = mgr.Start(ctrl.SetupSignalHandler())
	if errors.Is(err, ErrDependenciesChanged) {
		// A clean exit: the Deployment starts the controller again, and it
		// sets up its watches for what is served now.
		options.Logger.Info("exiting to restart", "reason", err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("run the manager: %w", err)
	}
	return nil
}

// stripManagedFields drops managedFields from every cached object but those
// cached by metadata only: nothing reads them on full objects, and they were
// the largest part of a cached VM or profile (make bench, 300 profiles,
// together with dropping the per-child events: controller RSS per 1,000
// profiles from 94.5 to 68.8 MiB). The applier
// judges a metadata-only Secret by who manages its fields, so those keep them.
func stripManagedFields(in any) (any, error) {
	if _, metadataOnly := in.(*metav1.PartialObjectMetadata); metadataOnly {
		return in, nil
	}
	if obj, err := meta.Accessor(in); err == nil && obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	return in, nil
}

// electedFunc says, without blocking, whether elected is closed: the
// manager closes it once this replica leads, or at start without election.
func electedFunc(elected <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-elected:
			return true
		default:
			return false
		}
	}
}

// addLeaderLog adds the runnable that logs which pod leads (LeaderLog).
func addLeaderLog(mgr ctrl.Manager, config *rest.Config, options Options) error {
	namespace, err := leaderElectionNamespace(options.LeaderElectionNamespace)
	if err != nil {
		return err
	}
	self, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("leader log: host name: %w", err)
	}
	leaderLog := &LeaderLog{Config: config, Namespace: namespace, Name: LeaderElectionID, Self: self,
		Logger: options.Logger.WithName("leader")}
	if err := mgr.Add(leaderLog); err != nil {
		return fmt.Errorf("add the leader log: %w", err)
	}
	return nil
}

// startEventRecording records the reconcilers' events through the core/v1
// API (coreEventSink) rather than controller-runtime's recorder, which
// writes through events.k8s.io/v1 and so leaves lastTimestamp empty.
func startEventRecording(mgr ctrl.Manager, config *rest.Config) (*eventRecording, error) {
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("event recording: client for %s: %w", config.Host, err)
	}
	recording, err := newEventRecording(clientset.CoreV1())
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(recording); err != nil {
		recording.stop()
		return nil, fmt.Errorf("add the event recording: %w", err)
	}
	return recording, nil
}
