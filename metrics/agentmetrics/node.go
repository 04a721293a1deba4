// Package agentmetrics defines the Prometheus metrics of vmop-agent: probe
// results, link statistics and per-VLAN counters of its node.
package agentmetrics

import (
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// LinkSample is one relevant interface as the agent last probed it. Role is
// one of a handful of words (bridge, bridge-port, vlan, bond, uplink, pf), so
// labels stay bounded: the agent never samples per-VM links.
type LinkSample struct {
	Name    string
	Role    string
	Up      bool
	Carrier bool
	// Counters straight from the kernel.
	RxBytes, TxBytes, RxPackets, TxPackets, RxErrors, TxErrors, RxDropped, TxDropped uint64
	CarrierChanges                                                                   uint64
}

// PFSample is one SR-IOV physical function.
type PFSample struct {
	Name                     string
	Total, Configured, InUse int
}

// Node holds the agent's metrics in a registry of its own, so tests can
// build one per agent and nothing depends on the global default registry.
type Node struct {
	Registry             *prometheus.Registry
	ProbeDuration        *prometheus.HistogramVec
	CapabilityWrites     prometheus.Counter
	SubscriptionRestarts *prometheus.CounterVec

	kvmAvailable prometheus.Gauge
	policies     *prometheus.GaugeVec
	sriov        *prometheus.GaugeVec
	links        *linkCollector
	vlanCounting prometheus.Gauge
	vlanPorts    *prometheus.GaugeVec
	vlans        *vlanCollector
}

// NewNode registers every vmop_node_* metric in a new registry. version is
// reported in vmop_node_build_info.
func NewNode(version string) *Node {
	n := &Node{
		Registry: prometheus.NewRegistry(),
		ProbeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vmop_node_probe_duration_seconds",
			Help:    "Time one probe of the node took, by probe (kvm, links, bridge_vlans, sriov, policies).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"probe"}),
		CapabilityWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmop_node_capability_writes_total",
			Help: "Writes of this node's NodeCapability (create or status update); zero at rest.",
		}),
		SubscriptionRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmop_node_netlink_subscription_restarts_total",
			Help: "Netlink subscriptions re-established after they failed or closed, by subscription (link, addr).",
		}, []string{"subscription"}),
		kvmAvailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmop_node_kvm_available",
			Help: "1 when the kernel offers /dev/kvm (its misc device is in sysfs), and a device node the agent can open answers KVM API version 12.",
		}),
		policies: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vmop_node_policies",
			Help: "nmstate policies selecting this node, by whether the kernel matches them (verified, unverified).",
		}, []string{"state"}),
		sriov: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vmop_node_sriov_vfs",
			Help: "SR-IOV virtual functions per PF: total the device supports, configured (numvfs), in_use.",
		}, []string{"pf", "state"}),
		links: newLinkCollector(),
		vlanCounting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmop_node_vlan_counters_available",
			Help: "1 when the per-VLAN eBPF counters are attached to every uplink and bridge port; 0 when BPF is unavailable, some port failed or the port limit left some out (the NodeCapability's VLANCountersReady condition says why).",
		}),
		vlanPorts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vmop_node_vlan_ports",
			Help: "Ports for per-VLAN counting: counted, and skipped (left out because the node has more than the agent's --vlan-counter-max-ports).",
		}, []string{"state"}),
		vlans: newVLANCollector(),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vmop_node_build_info",
		Help:        "Always 1; labels say which vmop-agent build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	n.Registry.MustRegister(n.ProbeDuration, n.CapabilityWrites, n.SubscriptionRestarts,
		n.kvmAvailable, n.policies, n.sriov, n.links, n.vlanCounting, n.vlanPorts, n.vlans, buildInfo)
	for _, s := range []string{"link", "addr"} {
		n.SubscriptionRestarts.WithLabelValues(s) // present at zero, so alerts can use rate()
	}
	return n
}

// SetKVM records whether KVM is usable.
func (n *Node) SetKVM(available bool) {
	n.kvmAvailable.Set(boolValue(available))
}

// SetPolicies records how many policies are verified and unverified.
func (n *Node) SetPolicies(verified, unverified int) {
	n.policies.WithLabelValues("verified").Set(float64(verified))
	n.policies.WithLabelValues("unverified").Set(float64(unverified))
}

// SetSRIOV replaces the per-PF VF gauges; PFs that disappeared are dropped.
func (n *Node) SetSRIOV(pfs []PFSample) {
	n.sriov.Reset()
	for _, pf := range pfs {
		n.sriov.WithLabelValues(pf.Name, "total").Set(float64(pf.Total))
		n.sriov.WithLabelValues(pf.Name, "configured").Set(float64(pf.Configured))
		n.sriov.WithLabelValues(pf.Name, "in_use").Set(float64(pf.InUse))
	}
}

// SetLinks replaces the link samples; links no longer listed stop being exported.
func (n *Node) SetLinks(samples []LinkSample) {
	n.links.set(samples)
}

// SetVLANCounting records whether the per-VLAN counters work everywhere.
func (n *Node) SetVLANCounting(ok bool) {
	n.vlanCounting.Set(boolValue(ok))
}

// SetVLANCounterPorts records how many ports are counted and how many the
// port limit left out.
func (n *Node) SetVLANCounterPorts(counted, skipped int) {
	n.vlanPorts.WithLabelValues("counted").Set(float64(counted))
	n.vlanPorts.WithLabelValues("skipped").Set(float64(skipped))
}

// SetVLANSource gives the function that reads the per-VLAN counters at
// every scrape; they change between probe rounds, so no round samples them.
func (n *Node) SetVLANSource(read func() []VLANSample) {
	n.vlans.setSource(read)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// linkCollector emits the latest link samples at scrape time: the kernel's
// counters, carrier changes included, are exported as they are (they are
// already monotonic), not re-counted.
type linkCollector struct {
	mu      sync.Mutex
	samples []LinkSample

	up, carrier *prometheus.Desc
	counters    []counterDesc
}

type counterDesc struct {
	desc  *prometheus.Desc
	value func(LinkSample) uint64
}

func newLinkCollector() *linkCollector {
	labels := []string{"interface", "role"}
	counter := func(name, help string, value func(LinkSample) uint64) counterDesc {
		return counterDesc{desc: prometheus.NewDesc(name, help, labels, nil), value: value}
	}
	return &linkCollector{
		up:      prometheus.NewDesc("vmop_node_link_up", "1 when the interface is administratively up.", labels, nil),
		carrier: prometheus.NewDesc("vmop_node_link_carrier", "1 when the interface has carrier (operstate up).", labels, nil),
		counters: []counterDesc{
			counter("vmop_node_link_carrier_changes_total", "Carrier changes, from the kernel's counter (IFLA_CARRIER_CHANGES).", func(s LinkSample) uint64 { return s.CarrierChanges }),
			counter("vmop_node_link_receive_bytes_total", "Bytes received, from the kernel's link statistics.", func(s LinkSample) uint64 { return s.RxBytes }),
			counter("vmop_node_link_transmit_bytes_total", "Bytes transmitted, from the kernel's link statistics.", func(s LinkSample) uint64 { return s.TxBytes }),
			counter("vmop_node_link_receive_packets_total", "Packets received.", func(s LinkSample) uint64 { return s.RxPackets }),
			counter("vmop_node_link_transmit_packets_total", "Packets transmitted.", func(s LinkSample) uint64 { return s.TxPackets }),
			counter("vmop_node_link_receive_errors_total", "Receive errors.", func(s LinkSample) uint64 { return s.RxErrors }),
			counter("vmop_node_link_transmit_errors_total", "Transmit errors.", func(s LinkSample) uint64 { return s.TxErrors }),
			counter("vmop_node_link_receive_drops_total", "Received packets dropped.", func(s LinkSample) uint64 { return s.RxDropped }),
			counter("vmop_node_link_transmit_drops_total", "Transmitted packets dropped.", func(s LinkSample) uint64 { return s.TxDropped }),
		},
	}
}

func (c *linkCollector) set(samples []LinkSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	present := make(map[string]bool, len(samples))
	unique := make([]LinkSample, 0, len(samples))
	for _, s := range samples {
		if present[s.Name] {
			continue // one series per interface: a second role would be a duplicate
		}
		present[s.Name] = true
		unique = append(unique, s)
	}
	c.samples = unique
}

func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.carrier
	for _, cd := range c.counters {
		ch <- cd.desc
	}
}

func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.samples {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(s.Up), s.Name, s.Role)
		ch <- prometheus.MustNewConstMetric(c.carrier, prometheus.GaugeValue, boolValue(s.Carrier), s.Name, s.Role)
		for _, cd := range c.counters {
			ch <- prometheus.MustNewConstMetric(cd.desc, prometheus.CounterValue, float64(cd.value(s)), s.Name, s.Role)
		}
	}
}
