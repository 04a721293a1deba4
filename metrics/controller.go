// Package metrics defines the Prometheus metrics of vmop-controller (and,
// later, the node metrics of vmop-agent). Metrics are registered on a
// registry the caller passes in; nothing here is global.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Controller holds vmop-controller's own metrics, next to controller-runtime's built-ins.
type Controller struct {
	timeToReady prometheus.Histogram
	byPhase     *profilesByPhase
}

// NewController creates the metrics and registers them on registry. Profiles
// by phase are counted at scrape time from reader (the manager's cache), so
// the gauge can never drift from what is stored.
func NewController(registry prometheus.Registerer, reader client.Reader) (*Controller, error) {
	m := &Controller{
		timeToReady: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vmop_profile_time_to_ready_seconds",
			Help:    "Time from a VirtualMachineProfile's creation to its first Ready condition.",
			Buckets: []float64{5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600},
		}),
		byPhase: &profilesByPhase{
			reader: reader,
			desc: prometheus.NewDesc("vmop_profiles", "VirtualMachineProfiles by phase.",
				[]string{"phase"}, nil),
		},
	}
	for _, c := range []prometheus.Collector{m.timeToReady, m.byPhase} {
		if err := registry.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveTimeToReady records one profile's time from creation to Ready.
func (m *Controller) ObserveTimeToReady(d time.Duration) {
	m.timeToReady.Observe(d.Seconds())
}

// profilesByPhase counts profiles per phase when scraped.
type profilesByPhase struct {
	reader client.Reader
	desc   *prometheus.Desc
}

func (c *profilesByPhase) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

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
	for i := range profiles.Items {
		phase := profiles.Items[i].Status.Phase
		if phase == "" {
			phase = vmv1alpha1.PhasePending
		}
		counts[phase]++
	}
	for phase, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(phase))
	}
}
