// Package controllermetrics defines the Prometheus metrics of
// vmop-controller; agentmetrics has vmop-agent's, and metrics/ the alerts
// on both. Metrics are registered on a registry the caller passes in;
// nothing here is global.
package controllermetrics

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Controller holds vmop-controller's own metrics, next to controller-runtime's built-ins.
type Controller struct {
	timeToReady prometheus.Histogram
}

// ControllerInputs are what the scrape-time metrics read.
type ControllerInputs struct {
	// Reader is the manager's cache: profiles and agent Leases are counted
	// from it at scrape time, so no gauge can drift from what is stored.
	Reader client.Reader
	// Leading says whether this replica leads. Only the leader exports
	// what is counted from the cluster (vmop_profiles, the agents' Leases):
	// every replica would export the same numbers, and each alert on them
	// would fire once per replica.
	Leading func() bool
	// LeaseNamespace holds the agents' Leases.
	LeaseNamespace string
	// Version is reported in vmop_controller_build_info.
	Version string
}

// NewController creates the metrics and registers them on registry.
func NewController(registry prometheus.Registerer, in ControllerInputs) (*Controller, error) {
	m := &Controller{
		timeToReady: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vmop_profile_time_to_ready_seconds",
			Help:    "Time from a VirtualMachineProfile's creation to its first Ready condition.",
			Buckets: []float64{5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600},
		}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vmop_controller_build_info",
		Help:        "Always 1; labels say which vmop-controller build runs.",
		ConstLabels: prometheus.Labels{"version": in.Version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	leader := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vmop_controller_leader",
		Help: "1 on the replica that leads (reconciles), 0 on the others.",
	}, func() float64 { return boolValue(in.Leading()) })
	byPhase := &leaderOnly{leading: in.Leading, collector: &profilesByPhase{
		reader: in.Reader,
		desc:   prometheus.NewDesc("vmop_profiles", "VirtualMachineProfiles by phase (exported by the leader only).", []string{"phase"}, nil),
		notReady: prometheus.NewDesc("vmop_profiles_not_ready",
			"VirtualMachineProfiles whose Ready condition is not True, by its reason (NoEligibleNodes for placement; exported by the leader only).", []string{"reason"}, nil),
	}}
	agents := &leaderOnly{leading: in.Leading, collector: &agentLeases{
		reader:    in.Reader,
		namespace: in.LeaseNamespace,
		desc: prometheus.NewDesc("vmop_agent_lease_expiry_timestamp_seconds",
			"When each node's vmop-agent Lease lapses unless renewed (Unix time; exported by the leader only).", []string{"node"}, nil),
	}}
	for _, c := range []prometheus.Collector{m.timeToReady, buildInfo, leader, byPhase, agents} {
		if err := registry.Register(c); err != nil {
			return nil, fmt.Errorf("register metric: %w", err)
		}
	}
	return m, nil
}

// ObserveTimeToReady records one profile's time from creation to Ready.
func (m *Controller) ObserveTimeToReady(d time.Duration) {
	m.timeToReady.Observe(d.Seconds())
}

// profilesByPhase counts profiles per phase, and those not Ready per
// reason, when scraped. Reasons are the API's constants, so the series stay
// few.
type profilesByPhase struct {
	reader   client.Reader
	desc     *prometheus.Desc
	notReady *prometheus.Desc
}

func (c *profilesByPhase) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.notReady
}

func (c *profilesByPhase) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := c.reader.List(ctx, &profiles); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	counts := map[vmv1alpha1.Phase]int{
		vmv1alpha1.PhasePending: 0, vmv1alpha1.PhaseCreating: 0, vmv1alpha1.PhaseRunning: 0,
		vmv1alpha1.PhaseStopped: 0, vmv1alpha1.PhaseError: 0,
	}
	notReady := map[string]int{}
	for i := range profiles.Items {
		status := &profiles.Items[i].Status
		phase := status.Phase
		if phase == "" {
			phase = vmv1alpha1.PhasePending
		}
		counts[phase]++
		ready := meta.FindStatusCondition(status.Conditions, vmv1alpha1.ConditionReady)
		switch {
		case ready == nil:
			notReady["NotObservedYet"]++
		case ready.Status != metav1.ConditionTrue:
			notReady[ready.Reason]++
		}
	}
	for phase, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(phase))
	}
	for reason, n := range notReady {
		ch <- prometheus.MustNewConstMetric(c.notReady, prometheus.GaugeValue, float64(n), reason)
	}
}

// leaderOnly collects its collector only while this replica leads. Describe
// always lists the descriptors, so the registry checks them at start.
type leaderOnly struct {
	leading   func() bool
	collector prometheus.Collector
}

func (c *leaderOnly) Describe(ch chan<- *prometheus.Desc) { c.collector.Describe(ch) }

func (c *leaderOnly) Collect(ch chan<- prometheus.Metric) {
	if c.leading() {
		c.collector.Collect(ch)
	}
}

// agentLeases exports each agent Lease's expiry (the leader election's
// Lease shares the namespace and is left out).
type agentLeases struct {
	reader    client.Reader
	namespace string
	desc      *prometheus.Desc
}

func (c *agentLeases) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *agentLeases) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var leases coordinationv1.LeaseList
	if err := c.reader.List(ctx, &leases, client.InNamespace(c.namespace)); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for i := range leases.Items {
		lease := &leases.Items[i]
		expiry := agentlease.Expiry(lease)
		if !agentlease.Is(lease) || expiry.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(expiry.Unix()), lease.Name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
