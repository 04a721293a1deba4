//go:build integration

package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/jianfenliu/vmoperator/agent/vlantraffic"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestAgentCountsVLANsOnItsUplinks runs the agent with real counters: it
// attaches to the uplink it reports, says so in VLANCountersReady, and
// /metrics shows the frames sent into the uplink, per VLAN.
func TestAgentCountsVLANsOnItsUplinks(t *testing.T) {
	const node = "node-vlan-counters"
	createNode(t, node)
	ns := netnstest.New(t)
	ns.NoIPv6(t)
	ns.VethPair(t, "uplink0", "uplink0-peer", "")
	counter, err := vlantraffic.New(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(counter.Close)
	cfg := watch.Config{Debounce: 100 * time.Millisecond, MinInterval: 200 * time.Millisecond, Resync: time.Minute}
	agent := startAgent(t, node, ns, cfg, WithExtraUplinks("uplink0"), WithVLANCounter(counter))

	waitStored(t, node, 10*time.Second, "VLANCountersReady True", func(nc *vmv1alpha1.NodeCapability) bool {
		c := meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
		return c != nil && c.Status == "True"
	})
	c := meta.FindStatusCondition(stored(t, node).Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
	if c.Reason != vmv1alpha1.ReasonCounting || c.Message != "per-VLAN counters attached with tcx to every uplink and bridge port" {
		t.Errorf("VLANCountersReady = %s %q", c.Reason, c.Message)
	}
	// uplink0 carries no VLAN link (untagged only), so tagged frames are disallowed.
	ns.Send(t, "uplink0-peer", 6, netnstest.Frame(42, 60))
	want := `
# HELP vmop_node_vlan_disallowed_packets_total Frames received with a VLAN the port does not carry; the bridge (or the kernel) drops them. Usually a switch port trunking VLANs the host does not expect.
# TYPE vmop_node_vlan_disallowed_packets_total counter
vmop_node_vlan_disallowed_packets_total{interface="uplink0",vlan="other"} 6
`
	waitFor(t, 5*time.Second, "6 disallowed frames on uplink0", func() bool {
		return testutil.GatherAndCompare(agent.metrics.Registry, strings.NewReader(want), "vmop_node_vlan_disallowed_packets_total") == nil
	})
	assertAvailable(t, agent, 1)
}

// TestAgentWithoutVLANCountersSaysWhy: where BPF cannot be loaded the agent
// publishes everything else, with VLANCountersReady False and the metric 0.
func TestAgentWithoutVLANCountersSaysWhy(t *testing.T) {
	const node = "node-no-vlan-counters"
	createNode(t, node)
	ns := netnstest.New(t)
	ns.VethPair(t, "uplink0", "uplink0-peer", "")
	cfg := watch.Config{Debounce: 100 * time.Millisecond, MinInterval: 200 * time.Millisecond, Resync: time.Minute}
	disabled := vlantraffic.Disabled{Reason: errors.New("loading the per-VLAN counting programs: operation not permitted")}
	agent := startAgent(t, node, ns, cfg, WithExtraUplinks("uplink0"), WithVLANCounter(disabled))
	waitStored(t, node, 10*time.Second, "uplink0 and VLANCountersReady", func(nc *vmv1alpha1.NodeCapability) bool {
		return len(nc.Status.Uplinks) == 1 && meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady) != nil
	})
	nc := stored(t, node)
	c := meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
	want := "per-VLAN counting is unavailable: loading the per-VLAN counting programs: operation not permitted"
	if c.Status != "False" || c.Reason != vmv1alpha1.ReasonBPFUnavailable || c.Message != want {
		t.Errorf("VLANCountersReady = %s %s %q, want False %s %q", c.Status, c.Reason, c.Message, vmv1alpha1.ReasonBPFUnavailable, want)
	}
	if ready := meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionReady); ready.Status != "True" {
		t.Errorf("Ready = %s %q: counting is monitoring, and must not make the node unready", ready.Status, ready.Message)
	}
	assertAvailable(t, agent, 0)
}

func assertAvailable(t *testing.T, agent *running, want int) {
	t.Helper()
	expected := fmt.Sprintf(`
# HELP vmop_node_vlan_counters_available 1 when the per-VLAN eBPF counters are attached to every uplink and bridge port; 0 when BPF is unavailable, some port failed or the port limit left some out (the NodeCapability's VLANCountersReady condition says why).
# TYPE vmop_node_vlan_counters_available gauge
vmop_node_vlan_counters_available %d
`, want)
	if err := testutil.GatherAndCompare(agent.metrics.Registry, strings.NewReader(expected), "vmop_node_vlan_counters_available"); err != nil {
		t.Error(err)
	}
}

// TestAgentLimitsCountedPorts: with more uplinks than the port limit, the
// agent counts on the first ones by name, says PortLimitReached, and the
// metrics say how many ports are counted and skipped.
func TestAgentLimitsCountedPorts(t *testing.T) {
	const node = "node-vlan-port-limit"
	createNode(t, node)
	ns := netnstest.New(t)
	ns.NoIPv6(t)
	for _, name := range []string{"up0", "up1", "up2"} {
		ns.VethPair(t, name, name+"-peer", "")
	}
	counter, err := vlantraffic.New(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(counter.Close)
	cfg := watch.Config{Debounce: 100 * time.Millisecond, MinInterval: 200 * time.Millisecond, Resync: time.Minute}
	agent := startAgent(t, node, ns, cfg, WithExtraUplinks("up0", "up1", "up2"), WithVLANCounter(counter), WithVLANPortLimit(2))
	waitStored(t, node, 10*time.Second, "VLANCountersReady", func(nc *vmv1alpha1.NodeCapability) bool {
		return meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady) != nil
	})
	c := meta.FindStatusCondition(stored(t, node).Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
	if c.Status != "False" || c.Reason != vmv1alpha1.ReasonPortLimitReached || !strings.Contains(c.Message, "--vlan-counter-max-ports=2") {
		t.Errorf("VLANCountersReady = %s %s %q, want False %s", c.Status, c.Reason, c.Message, vmv1alpha1.ReasonPortLimitReached)
	}
	want := `
# HELP vmop_node_vlan_ports Ports for per-VLAN counting: counted, and skipped (left out because the node has more than the agent's --vlan-counter-max-ports).
# TYPE vmop_node_vlan_ports gauge
vmop_node_vlan_ports{state="counted"} 2
vmop_node_vlan_ports{state="skipped"} 1
`
	if err := testutil.GatherAndCompare(agent.metrics.Registry, strings.NewReader(want), "vmop_node_vlan_ports"); err != nil {
		t.Error(err)
	}
	// up2 comes last by name: frames on it are not counted, on up0 they are.
	ns.Send(t, "up0-peer", 3, netnstest.Frame(42, 60))
	ns.Send(t, "up2-peer", 3, netnstest.Frame(42, 60))
	waitFor(t, 5*time.Second, "frames counted on up0", func() bool {
		for _, s := range counter.Samples() {
			if s.Interface == "up0" && s.RxPackets == 3 {
				return true
			}
		}
		return false
	})
	for _, s := range counter.Samples() {
		if s.Interface == "up2" {
			t.Errorf("up2 is past the limit but counted: %+v", s)
		}
	}
	assertAvailable(t, agent, 0)
}
