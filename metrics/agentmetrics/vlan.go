package agentmetrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// VLANSample is one port's counters for one VLAN label: a VLAN ID in use on
// the node, "untagged", or "other" for every ID not in use.
type VLANSample struct {
	Interface, VLAN    string
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	DisallowedPackets  uint64
}

// vlanCollector reads the counters at scrape time from a source the agent
// sets once its counters exist.
type vlanCollector struct {
	mu   sync.Mutex
	read func() []VLANSample

	packets, bytes, disallowed *prometheus.Desc
}

func newVLANCollector() *vlanCollector {
	return &vlanCollector{
		packets: prometheus.NewDesc("vmop_node_vlan_packets_total",
			"Frames per VLAN on an uplink or bridge port, by direction (receive: from the wire; transmit: to it), counted by eBPF.",
			[]string{"interface", "vlan", "direction"}, nil),
		bytes: prometheus.NewDesc("vmop_node_vlan_bytes_total",
			"Bytes per VLAN on an uplink or bridge port, by direction: whole frames, 802.1Q tag included, FCS not.",
			[]string{"interface", "vlan", "direction"}, nil),
		disallowed: prometheus.NewDesc("vmop_node_vlan_disallowed_packets_total",
			"Frames received with a VLAN the port does not carry; the bridge (or the kernel) drops them. Usually a switch port trunking VLANs the host does not expect.",
			[]string{"interface", "vlan"}, nil),
	}
}

func (c *vlanCollector) setSource(read func() []VLANSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = read
}

func (c *vlanCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
	ch <- c.disallowed
}

func (c *vlanCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	if read == nil {
		return
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range read() {
		counter(c.packets, s.RxPackets, s.Interface, s.VLAN, "receive")
		counter(c.packets, s.TxPackets, s.Interface, s.VLAN, "transmit")
		counter(c.bytes, s.RxBytes, s.Interface, s.VLAN, "receive")
		counter(c.bytes, s.TxBytes, s.Interface, s.VLAN, "transmit")
		counter(c.disallowed, s.DisallowedPackets, s.Interface, s.VLAN)
	}
}
