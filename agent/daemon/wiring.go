package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netns"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent"
	"github.com/jianfenliu/vmoperator/agent/liveness"
	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/publish"
	"github.com/jianfenliu/vmoperator/agent/verify"
	"github.com/jianfenliu/vmoperator/agent/vlantraffic"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
	"github.com/jianfenliu/vmoperator/metrics/secure"
	"github.com/jianfenliu/vmoperator/version"
)

func newScheme() (*k8sruntime.Scheme, error) {
	scheme := k8sruntime.NewScheme()
	for _, add := range []func(*k8sruntime.Scheme) error{
		clientgoscheme.AddToScheme, vmv1alpha1.AddToScheme, nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		config, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return config, nil
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return config, nil
}

// namespace opens the namespace to probe and netlink sockets inside it.
func namespace(path string) (netns.NsHandle, *probe.Netlink, error) {
	ns := netns.None()
	if path != "" {
		var err error
		if ns, err = netns.GetFromPath(path); err != nil {
			return ns, nil, fmt.Errorf("opening network namespace %s: %w", path, err)
		}
	}
	source, err := probe.NewNetlink(ns)
	if err != nil {
		return ns, nil, fmt.Errorf("probing network namespace %q: %w", path, err)
	}
	return ns, source, nil
}

// serve wires everything and runs until ctx ends.
func serve(ctx context.Context, o options, log logr.Logger) error {
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes client config: %w", err)
	}
	c, err := apiClient(cfg, scheme, o.apiTimeout)
	if err != nil {
		return err
	}
	ns, source, err := namespace(o.netnsPath)
	if err != nil {
		return err
	}
	defer source.Close()
	m := agentmetrics.NewNode(version.Version)

	w := watch.New(watch.Config{Debounce: o.debounce, MinInterval: o.minInterval, Resync: o.resync},
		m.SubscriptionRestarts, func(err error) { log.Error(err, "netlink subscription") },
		watch.LinkSubscription(ns), watch.AddrSubscription(ns))
	vlans, closeVLANs := vlanCounter(o, ns, log)
	defer closeVLANs()
	agentOpts := []agent.Option{agent.WithExtraUplinks(o.extraUplinks()...), agent.WithVLANCounter(vlans), agent.WithVLANPortLimit(o.vlanMaxPorts)}
	if o.verifyPolicies {
		if v := startVerifier(ctx, cfg, scheme, o.nodeName, w, log); v != nil {
			agentOpts = append(agentOpts, agent.WithPolicyVerifier(v))
		}
	}
	rounds, renewals := livenessLoops(o, time.Now)
	a := agent.New(
		probe.NewKVM(o.kvmDevice, o.sysfsRoot, o.procRoot),
		probe.NewLinks(source, sysfsForSpeeds(o)),
		probe.NewSRIOV(o.sysfsRoot),
		publish.NewPublisher(c, o.nodeName, m.CapabilityWrites),
		m, log.WithValues("node", o.nodeName), append(agentOpts, agent.WithRoundLiveness(rounds))...,
	)
	metricsServer, err := newMetricsServer(ctx, o, cfg, m, log)
	if err != nil {
		return err
	}
	servers, err := startHTTP(log, healthServer(o.healthAddr, healthMux(o, a, rounds, renewals)), metricsServer)
	if err != nil {
		return err
	}
	lease := publish.NewLease(c, o.leaseNamespace, o.nodeName, o.leaseDuration)
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		lease.Run(ctx, o.leaseRenew, renewals, func(err error) { log.Error(err, "renewing Lease") })
	}()
	log.Info("vmop-agent started", "node", o.nodeName, "version", version.String("vmop-agent"))
	a.Run(ctx, w)
	<-leaseDone // no renewal in flight when the process exits
	return shutdownHTTP(servers)
}

// vlanCounter loads the per-VLAN counters, or says why it
// cannot and goes on without them: counting is monitoring, and the probes
// and placement need none of it. The returned func detaches them (cls_bpf
// filters would outlive the process).
func vlanCounter(o options, ns netns.NsHandle, log logr.Logger) (agent.VLANCounter, func()) {
	if !o.vlanCounters {
		return vlantraffic.Disabled{Reason: errors.New("turned off by --vlan-counters=false")}, func() {}
	}
	c, err := vlantraffic.New(ns)
	if err != nil {
		log.Error(err, "per-VLAN counters are off; the agent runs without them")
		return vlantraffic.Disabled{Reason: err}, func() {}
	}
	return c, c.Close
}

// apiClient is the uncached client of the publisher (which compares with
// what the API stores) and the Lease. A silent apiserver must not hold a
// round or a renewal forever, nor keep SIGTERM from stopping the agent, so
// every request is bounded by timeout and none runs without the caller's
// context: controller-runtime's lazy RESTMapper would run discovery without
// it, so the client gets a fixed mapper of the three kinds it touches. The
// policy cache keeps the unbounded cfg, because its watches are long requests.
func apiClient(cfg *rest.Config, scheme *k8sruntime.Scheme, timeout time.Duration) (client.Client, error) {
	bounded := rest.CopyConfig(cfg)
	bounded.Timeout = timeout
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(vmv1alpha1.GroupVersion.WithKind("NodeCapability"), meta.RESTScopeRoot)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Node"), meta.RESTScopeRoot)
	mapper.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	c, err := client.New(bounded, client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// livenessLoops track the round loop and the Lease loop for /healthz.
// Created just before both loops start, so start-up (the policy cache's
// sync) does not count against them.
func livenessLoops(o options, now func() time.Time) (rounds, renewals *liveness.Loop) {
	rounds = liveness.NewLoop("probe rounds", liveness.Limits{
		MaxBusy: o.healthMaxRound,
		// Full rounds start at most 1.2 resync periods apart even on a quiet
		// node; twice the period plus a minute leaves room for a slow round.
		MaxIdle: 2*o.resync + time.Minute,
	}, now)
	renewals = liveness.NewLoop("Lease renewal", liveness.Limits{
		// An attempt outlasting the Lease it renews, or no attempt for that
		// long, lets the Lease expire because of the agent itself.
		MaxBusy: o.leaseDuration,
		MaxIdle: o.leaseDuration,
	}, now)
	return rounds, renewals
}

// sysfsForSpeeds: /sys/class/net shows the agent's own namespace, so link
// speeds are read only when probing that namespace.
func sysfsForSpeeds(o options) string {
	if o.netnsPath != "" {
		return ""
	}
	return o.sysfsRoot
}

// verifierSyncTimeout bounds the wait for the policy cache at start-up; a
// cluster without nmstate never syncs, and the agent must go on without it.
const verifierSyncTimeout = time.Minute

// startVerifier returns nil, and says why, when nmstate is not installed:
// the agent still reports everything else.
func startVerifier(ctx context.Context, cfg *rest.Config, scheme *k8sruntime.Scheme, node string, w *watch.Watcher, log logr.Logger) *verify.Verifier {
	v, err := verify.NewVerifier(cfg, scheme, node)
	if err == nil {
		err = v.OnChange(ctx, w.Kick)
	}
	if err == nil {
		// The cache lives as long as the agent (ctx); only the wait for it
		// to fill is bounded.
		err = v.Start(ctx, verifierSyncTimeout)
	}
	if err != nil {
		log.Error(err, "policy verification is off (is kubernetes-nmstate installed?)")
		return nil
	}
	return v
}

// healthMux serves /healthz (the loops are not wedged: restarting would
// help) and /readyz (the stored capability is current: placement may trust it).
func healthMux(o options, a *agent.Agent, loops ...*liveness.Loop) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", healthz(loops...))
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		// Ready once the stored capability is known current, and only while
		// rounds keep succeeding (at least one full resync window).
		last := a.LastPublished()
		if last.IsZero() || time.Since(last) > 3*o.resync {
			http.Error(rw, "NodeCapability not published recently", http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ok"))
	})
	return mux
}

// healthz fails while any loop is wedged, and says which and how. A loop
// that merely keeps failing (an unreachable apiserver) is not wedged: a
// restart would not help it.
func healthz(loops ...*liveness.Loop) http.HandlerFunc {
	return func(rw http.ResponseWriter, _ *http.Request) {
		if err := liveness.Check(loops...); err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ok"))
	}
}

// healthServer serves /healthz and /readyz in plain HTTP: the kubelet's
// probes carry no token, and the chart binds them to the node's loopback.
func healthServer(address string, handler http.Handler) *http.Server {
	return &http.Server{Addr: address, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
}

// newMetricsServer serves the node's registry at /metrics: over HTTPS, and
// only to bearer tokens the apiserver authenticates and authorizes for GET
// /metrics (per-VLAN byte counts are the tenants' business), unless
// --metrics-secure=false. nil when --metrics-bind-address is empty. A
// mounted certificate is watched until ctx ends.
func newMetricsServer(ctx context.Context, o options, cfg *rest.Config, m *agentmetrics.Node, log logr.Logger) (*http.Server, error) {
	if o.metricsAddr == "" {
		return nil, nil
	}
	handler := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	server := &http.Server{Addr: o.metricsAddr, ReadHeaderTimeout: 5 * time.Second}
	if o.metricsSecure {
		cert, err := secure.LoadCertificate(o.metricsCertDir, "vmop-agent")
		if err != nil {
			return nil, err
		}
		if cert.Watcher != nil {
			go func() {
				if err := cert.Watcher.Start(ctx); err != nil {
					log.Error(err, "watching the metrics certificate", "directory", o.metricsCertDir)
				}
			}()
		}
		if handler, err = secure.Authorized(cfg, handler, log.WithName("metrics")); err != nil {
			return nil, err
		}
		server.TLSConfig = secure.TLSConfig(cert)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", handler)
	server.Handler = mux
	return server, nil
}

// startHTTP binds every address before serving, so a taken port stops the
// agent at start with exit code 1 instead of leaving it half-alive. A
// server with a TLSConfig serves TLS; a nil server is left out.
func startHTTP(log logr.Logger, candidates ...*http.Server) ([]*http.Server, error) {
	var servers []*http.Server
	for _, s := range candidates {
		if s != nil {
			servers = append(servers, s)
		}
	}
	listeners := make([]net.Listener, 0, len(servers))
	for _, s := range servers {
		l, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			return nil, fmt.Errorf("listening on %s: %w", s.Addr, err)
		}
		if s.TLSConfig != nil {
			l = tls.NewListener(l, s.TLSConfig)
		}
		listeners = append(listeners, l)
	}
	for i, s := range servers {
		go func() {
			if err := s.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "HTTP server", "address", s.Addr)
			}
		}()
	}
	return servers, nil
}

func shutdownHTTP(servers []*http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
