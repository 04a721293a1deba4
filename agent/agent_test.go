//go:build integration

package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/publish"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	controlplane.RunTests(m, &cp)
}

// envDuration and envInt let a longer run (for the numbers in a report)
// reuse the same test: VMOP_QUIET_PERIOD=30s VMOP_LATENCY_SAMPLES=50.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return def
}

func envInt(t *testing.T, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

// running is one agent started by a test.
type running struct {
	metrics *agentmetrics.Node
	stop    func()
}

func startAgent(t *testing.T, nodeName string, ns *netnstest.Namespace, cfg watch.Config, opts ...Option) *running {
	t.Helper()
	return startAgentWith(t, nodeName, ns, cfg, func(*watch.Watcher) {}, opts...)
}

// startAgentWith lets the test wire extra event sources to the watcher
// before the agent runs.
func startAgentWith(t *testing.T, nodeName string, ns *netnstest.Namespace, cfg watch.Config, wire func(*watch.Watcher), opts ...Option) *running {
	t.Helper()
	m := agentmetrics.NewNode("test")
	sysfs := t.TempDir() // an SR-IOV-less sysfs: class/net exists and holds nothing
	if err := os.MkdirAll(filepath.Join(sysfs, "class", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	source, err := probe.NewNetlink(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(source.Close)
	a := New(
		probe.NewKVM("/dev/kvm", "/sys", "/proc"),
		probe.NewLinks(source, ""),
		probe.NewSRIOV(sysfs),
		publish.NewPublisher(cp.Client, nodeName, m.CapabilityWrites),
		m, testr.New(t), opts...,
	)
	w := watch.New(cfg, m.SubscriptionRestarts, func(err error) { t.Errorf("subscription: %v", err) },
		watch.LinkSubscription(ns.NS), watch.AddrSubscription(ns.NS))
	wire(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx, w) }()
	r := &running{metrics: m, stop: func() { cancel(); <-done }}
	t.Cleanup(r.stop)
	return r
}

func createNode(t *testing.T, name string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), node) })
}

func stored(t *testing.T, name string) *vmv1alpha1.NodeCapability {
	t.Helper()
	nc := &vmv1alpha1.NodeCapability{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Name: name}, nc); err != nil {
		return nil
	}
	return nc
}

// waitStored polls the API (not the agent) until cond holds and returns
// when it first did.
func waitStored(t *testing.T, name string, timeout time.Duration, what string, cond func(*vmv1alpha1.NodeCapability) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if nc := stored(t, name); nc != nil && cond(nc) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for the stored NodeCapability: %s; last: %+v", timeout, what, stored(t, name))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func port(nc *vmv1alpha1.NodeCapability, bridge, name string) *vmv1alpha1.BridgePort {
	for _, br := range nc.Status.Bridges {
		if br.Name != bridge {
			continue
		}
		for i := range br.Ports {
			if br.Ports[i].Name == name {
				return &br.Ports[i]
			}
		}
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	idx := int(float64(len(sorted)-1) * p)
	return sorted[idx]
}

// TestAgentEndToEnd runs the agent against a namespace with a bridge and
// the real apiserver: the capability appears, port changes reach it (the
// latency is measured), nothing is written over a quiet period, and a
// restarted agent on the unchanged node writes nothing.
func TestAgentEndToEnd(t *testing.T) {
	const node = "node-e2e"
	createNode(t, node)
	ns := netnstest.New(t)
	ns.Bridge(t, "br-mgmt")
	ns.VethPair(t, "mgmt-p0", "mgmt-q0", "br-mgmt")
	ns.VethPair(t, "uplink0", "uplink0-peer", "")
	cfg := watch.Config{Debounce: 500 * time.Millisecond, MinInterval: 2 * time.Second, Resync: 3 * time.Second}
	agent := startAgent(t, node, ns, cfg, WithExtraUplinks("uplink0"))

	waitStored(t, node, 10*time.Second, "bridge br-mgmt with port mgmt-p0 up", func(nc *vmv1alpha1.NodeCapability) bool {
		p := port(nc, "br-mgmt", "mgmt-p0")
		return p != nil && p.Up && len(nc.Status.Uplinks) == 1 && nc.Status.Uplinks[0].Name == "uplink0"
	})
	nc := stored(t, node)
	if len(nc.OwnerReferences) != 1 || nc.OwnerReferences[0].Kind != "Node" {
		t.Errorf("owner references = %+v, want the Node", nc.OwnerReferences)
	}

	// Detection latency: link change → stored NodeCapability. Changes are
	// spaced by MinInterval so each measures an isolated change, not the
	// flap limiter.
	samples := envInt(t, "VMOP_LATENCY_SAMPLES", 6)
	var latencies []time.Duration
	for i := range samples {
		time.Sleep(cfg.MinInterval)
		wantUp := i%2 == 1
		changed := time.Now()
		if wantUp {
			ns.SetUp(t, "mgmt-p0")
		} else {
			ns.SetDown(t, "mgmt-p0")
		}
		seen := waitStored(t, node, 15*time.Second, fmt.Sprintf("mgmt-p0 up=%v", wantUp), func(nc *vmv1alpha1.NodeCapability) bool {
			p := port(nc, "br-mgmt", "mgmt-p0")
			return p != nil && p.Up == wantUp
		})
		latencies = append(latencies, seen.Sub(changed))
	}
	slices.Sort(latencies)
	t.Logf("link change → stored NodeCapability over %d changes: p50 %v, p99 %v, max %v",
		len(latencies), percentile(latencies, 0.50), percentile(latencies, 0.99), latencies[len(latencies)-1])
	if worst := latencies[len(latencies)-1]; worst > 5*time.Second {
		t.Errorf("slowest change took %v, want under 5s", worst)
	}

	// Quiet period: resync rounds keep running (every ~3 s), the node does not change.
	quiet := envDuration(t, "VMOP_QUIET_PERIOD", 30*time.Second)
	time.Sleep(cfg.MinInterval + cfg.Debounce) // let the last change settle
	writesBefore := testutil.ToFloat64(agent.metrics.CapabilityWrites)
	rvBefore := stored(t, node).ResourceVersion
	roundsBefore := histogramCount(t, agent.metrics, "links")
	time.Sleep(quiet)
	writes := testutil.ToFloat64(agent.metrics.CapabilityWrites) - writesBefore
	rounds := histogramCount(t, agent.metrics, "links") - roundsBefore
	t.Logf("quiet period %v: %v capability writes over %d probe rounds", quiet, writes, rounds)
	if writes != 0 || stored(t, node).ResourceVersion != rvBefore {
		t.Errorf("quiet period: %v writes, resourceVersion %s → %s; want none", writes, rvBefore, stored(t, node).ResourceVersion)
	}
	if rounds < uint64(quiet/(cfg.Resync*6/5)) {
		t.Errorf("only %d probe rounds in %v: the resync did not run, so the zero-write result proves nothing", rounds, quiet)
	}

	// Restart on the unchanged node: the new agent reads the stored status and writes nothing.
	agent.stop()
	restarted := startAgent(t, node, ns, cfg, WithExtraUplinks("uplink0"))
	waitFor(t, 5*time.Second, "the restarted agent's first round", func() bool { return histogramCount(t, restarted.metrics, "links") >= 1 })
	time.Sleep(cfg.Resync * 2) // and a resync or two
	if w := testutil.ToFloat64(restarted.metrics.CapabilityWrites); w != 0 || stored(t, node).ResourceVersion != rvBefore {
		t.Errorf("restarted agent wrote %v times (resourceVersion %s → %s); want 0", w, rvBefore, stored(t, node).ResourceVersion)
	}
}

// histogramCount is how many times a probe ran, from its duration histogram.
func histogramCount(t *testing.T, m *agentmetrics.Node, probeName string) uint64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "vmop_node_probe_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "probe" && l.GetValue() == probeName {
					return metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestFlappingLinkWrites flaps a bridge port 40 times in about 2 s and
// counts the capability writes the apiserver received: the flap limiter
// allows one per MinInterval, and the final state must still be stored.
func TestFlappingLinkWrites(t *testing.T) {
	const node = "node-flap"
	createNode(t, node)
	ns := netnstest.New(t)
	ns.Bridge(t, "br-flap")
	ns.VethPair(t, "flap-p0", "flap-q0", "br-flap")
	cfg := watch.Config{Debounce: 500 * time.Millisecond, MinInterval: 2 * time.Second, Resync: time.Hour}
	agent := startAgent(t, node, ns, cfg)
	waitStored(t, node, 10*time.Second, "flap-p0 up", func(nc *vmv1alpha1.NodeCapability) bool {
		p := port(nc, "br-flap", "flap-p0")
		return p != nil && p.Up
	})
	time.Sleep(cfg.MinInterval)
	before := testutil.ToFloat64(agent.metrics.CapabilityWrites)
	rvBefore := stored(t, node).ResourceVersion
	start := time.Now()
	for i := range 40 {
		if i%2 == 0 {
			ns.SetDown(t, "flap-p0")
		} else {
			ns.SetUp(t, "flap-p0")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ns.SetDown(t, "flap-p0") // settles down
	flapping := time.Since(start)
	waitStored(t, node, 10*time.Second, "flap-p0 finally down", func(nc *vmv1alpha1.NodeCapability) bool {
		p := port(nc, "br-flap", "flap-p0")
		return p != nil && !p.Up
	})
	time.Sleep(cfg.MinInterval + cfg.Debounce)
	writes := testutil.ToFloat64(agent.metrics.CapabilityWrites) - before
	limit := float64(flapping/cfg.MinInterval) + 2
	t.Logf("41 link changes over %v → %v capability writes (limit %v); resourceVersion %s → %s",
		flapping, writes, limit, rvBefore, stored(t, node).ResourceVersion)
	if writes < 1 || writes > limit {
		t.Errorf("flapping caused %v writes, want 1..%v", writes, limit)
	}
}
