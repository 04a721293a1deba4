package agentmetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNodeLinkMetrics(t *testing.T) {
	n := NewNode("test")
	n.SetLinks([]LinkSample{
		{Name: "br-mgmt", Role: "bridge", Up: true, Carrier: true, RxBytes: 100, TxBytes: 200, RxPackets: 1, TxPackets: 2, CarrierChanges: 1},
		{Name: "eth1", Role: "uplink", Up: true, Carrier: true, RxErrors: 3, TxDropped: 4, CarrierChanges: 3},
		{Name: "eth1", Role: "bridge-port", Up: true, Carrier: true}, // duplicate name: dropped
	})
	// The kernel's counters are exported as they are: eth1 flapped twice
	// between the two probes and its carrier looks unchanged, yet the
	// counter says 4 more.
	n.SetLinks([]LinkSample{
		{Name: "br-mgmt", Role: "bridge", Up: true, Carrier: true, RxBytes: 150, TxBytes: 250, RxPackets: 2, TxPackets: 3, CarrierChanges: 1},
		{Name: "eth1", Role: "uplink", Up: true, Carrier: true, RxErrors: 3, TxDropped: 4, CarrierChanges: 7},
	})
	want := `
# HELP vmop_node_link_carrier 1 when the interface has carrier (operstate up).
# TYPE vmop_node_link_carrier gauge
vmop_node_link_carrier{interface="br-mgmt",role="bridge"} 1
vmop_node_link_carrier{interface="eth1",role="uplink"} 1
# HELP vmop_node_link_carrier_changes_total Carrier changes, from the kernel's counter (IFLA_CARRIER_CHANGES).
# TYPE vmop_node_link_carrier_changes_total counter
vmop_node_link_carrier_changes_total{interface="br-mgmt",role="bridge"} 1
vmop_node_link_carrier_changes_total{interface="eth1",role="uplink"} 7
# HELP vmop_node_link_receive_bytes_total Bytes received, from the kernel's link statistics.
# TYPE vmop_node_link_receive_bytes_total counter
vmop_node_link_receive_bytes_total{interface="br-mgmt",role="bridge"} 150
vmop_node_link_receive_bytes_total{interface="eth1",role="uplink"} 0
# HELP vmop_node_link_receive_errors_total Receive errors.
# TYPE vmop_node_link_receive_errors_total counter
vmop_node_link_receive_errors_total{interface="br-mgmt",role="bridge"} 0
vmop_node_link_receive_errors_total{interface="eth1",role="uplink"} 3
# HELP vmop_node_link_transmit_drops_total Transmitted packets dropped.
# TYPE vmop_node_link_transmit_drops_total counter
vmop_node_link_transmit_drops_total{interface="br-mgmt",role="bridge"} 0
vmop_node_link_transmit_drops_total{interface="eth1",role="uplink"} 4
# HELP vmop_node_link_up 1 when the interface is administratively up.
# TYPE vmop_node_link_up gauge
vmop_node_link_up{interface="br-mgmt",role="bridge"} 1
vmop_node_link_up{interface="eth1",role="uplink"} 1
`
	names := []string{"vmop_node_link_carrier", "vmop_node_link_carrier_changes_total", "vmop_node_link_receive_bytes_total",
		"vmop_node_link_receive_errors_total", "vmop_node_link_transmit_drops_total", "vmop_node_link_up"}
	if err := testutil.GatherAndCompare(n.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// A link that disappears takes its series with it.
	n.SetLinks([]LinkSample{{Name: "br-mgmt", Role: "bridge", Up: true, Carrier: true}})
	if got := testutil.CollectAndCount(n.links, "vmop_node_link_up"); got != 1 {
		t.Errorf("vmop_node_link_up series after eth1 vanished = %d, want 1", got)
	}
}

func TestNodeScalarMetrics(t *testing.T) {
	n := NewNode("v1.2.3")
	n.SetKVM(true)
	n.SetPolicies(2, 1)
	n.SetSRIOV([]PFSample{{Name: "ens2f0", Total: 64, Configured: 8, InUse: 3}})
	n.SetSRIOV([]PFSample{{Name: "ens2f1", Total: 8, Configured: 4, InUse: 0}}) // ens2f0 gone
	n.CapabilityWrites.Inc()
	n.SubscriptionRestarts.WithLabelValues("link").Inc()
	n.SetVLANCounterPorts(64, 192)
	want := `
# HELP vmop_node_capability_writes_total Writes of this node's NodeCapability (create or status update); zero at rest.
# TYPE vmop_node_capability_writes_total counter
vmop_node_capability_writes_total 1
# HELP vmop_node_kvm_available 1 when the kernel offers /dev/kvm (its misc device is in sysfs), and a device node the agent can open answers KVM API version 12.
# TYPE vmop_node_kvm_available gauge
vmop_node_kvm_available 1
# HELP vmop_node_netlink_subscription_restarts_total Netlink subscriptions re-established after they failed or closed, by subscription (link, addr).
# TYPE vmop_node_netlink_subscription_restarts_total counter
vmop_node_netlink_subscription_restarts_total{subscription="addr"} 0
vmop_node_netlink_subscription_restarts_total{subscription="link"} 1
# HELP vmop_node_policies nmstate policies selecting this node, by whether the kernel matches them (verified, unverified).
# TYPE vmop_node_policies gauge
vmop_node_policies{state="unverified"} 1
vmop_node_policies{state="verified"} 2
# HELP vmop_node_sriov_vfs SR-IOV virtual functions per PF: total the device supports, configured (numvfs), in_use.
# TYPE vmop_node_sriov_vfs gauge
vmop_node_sriov_vfs{pf="ens2f1",state="configured"} 4
vmop_node_sriov_vfs{pf="ens2f1",state="in_use"} 0
vmop_node_sriov_vfs{pf="ens2f1",state="total"} 8
# HELP vmop_node_vlan_ports Ports for per-VLAN counting: counted, and skipped (left out because the node has more than the agent's --vlan-counter-max-ports).
# TYPE vmop_node_vlan_ports gauge
vmop_node_vlan_ports{state="counted"} 64
vmop_node_vlan_ports{state="skipped"} 192
`
	names := []string{"vmop_node_capability_writes_total", "vmop_node_kvm_available", "vmop_node_netlink_subscription_restarts_total",
		"vmop_node_policies", "vmop_node_sriov_vfs", "vmop_node_vlan_ports"}
	if err := testutil.GatherAndCompare(n.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(n.Registry, "vmop_node_build_info"); got != 1 {
		t.Errorf("build info series = %d, want 1", got)
	}
}

// TestNodeLint runs client_golang's metric linter (the same rules as
// promtool check metrics) over a full scrape.
func TestNodeLint(t *testing.T) {
	n := NewNode("test")
	n.SetLinks([]LinkSample{{Name: "eth0", Role: "uplink", Up: true, Carrier: true}})
	n.ProbeDuration.WithLabelValues("links").Observe(0.01)
	problems, err := testutil.GatherAndLint(n.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNodeVLANMetricsAreReadAtScrapeTime(t *testing.T) {
	n := NewNode("test")
	if got := testutil.CollectAndCount(n.vlans); got != 0 {
		t.Errorf("%d VLAN series before the counters exist, want 0", got)
	}
	rx := uint64(3)
	n.SetVLANSource(func() []VLANSample {
		return []VLANSample{
			{Interface: "eth1", VLAN: "100", RxPackets: rx, RxBytes: 100 * rx, TxPackets: 5, TxBytes: 450},
			{Interface: "eth1", VLAN: "other", RxPackets: 2, RxBytes: 160, DisallowedPackets: 2},
		}
	})
	n.SetVLANCounting(true)
	rx = 4 // a scrape reads the counters as they are then
	want := `
# HELP vmop_node_vlan_counters_available 1 when the per-VLAN eBPF counters are attached to every uplink and bridge port; 0 when BPF is unavailable, some port failed or the port limit left some out (the NodeCapability's VLANCountersReady condition says why).
# TYPE vmop_node_vlan_counters_available gauge
vmop_node_vlan_counters_available 1
# HELP vmop_node_vlan_disallowed_packets_total Frames received with a VLAN the port does not carry; the bridge (or the kernel) drops them. Usually a switch port trunking VLANs the host does not expect.
# TYPE vmop_node_vlan_disallowed_packets_total counter
vmop_node_vlan_disallowed_packets_total{interface="eth1",vlan="100"} 0
vmop_node_vlan_disallowed_packets_total{interface="eth1",vlan="other"} 2
# HELP vmop_node_vlan_packets_total Frames per VLAN on an uplink or bridge port, by direction (receive: from the wire; transmit: to it), counted by eBPF.
# TYPE vmop_node_vlan_packets_total counter
vmop_node_vlan_packets_total{direction="receive",interface="eth1",vlan="100"} 4
vmop_node_vlan_packets_total{direction="receive",interface="eth1",vlan="other"} 2
vmop_node_vlan_packets_total{direction="transmit",interface="eth1",vlan="100"} 5
vmop_node_vlan_packets_total{direction="transmit",interface="eth1",vlan="other"} 0
`
	names := []string{"vmop_node_vlan_counters_available", "vmop_node_vlan_disallowed_packets_total", "vmop_node_vlan_packets_total"}
	if err := testutil.GatherAndCompare(n.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(n.vlans, "vmop_node_vlan_bytes_total"); got != 4 {
		t.Errorf("%d byte series, want 4", got)
	}
}
