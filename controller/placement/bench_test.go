package placement

import (
	"fmt"
	"testing"
)

// benchNodes builds n nodes of a realistic mix: most eligible, the rest each
// failing a different check.
func benchNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		var c = capability(withBridge("br-mgmt", true, "eth1", "1,100-110,200-210"), withBridge("br-data", true, "eth2", "300"),
			withPF("ens1f0", 8, int32(i%9)), withPolicy("vmop-edge", i%7 != 0, "drift"))
		switch i % 10 {
		case 1:
			c.Bridges[0].Up = false
		case 2:
			c.Bridges[0].Ports[0].VLANs = "200"
		}
		nodes[i] = Node{Name: fmt.Sprintf("node-%05d", i), Labels: map[string]string{"kubernetes.io/arch": "amd64"}, Capability: c}
	}
	return nodes
}

func BenchmarkEvaluate(b *testing.B) {
	profile := seedProfile()
	needs := needsOf(b, profile)
	for _, n := range []int{1_000, 10_000} {
		nodes := benchNodes(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var eligible int
			for b.Loop() {
				eligible = len(Evaluate(profile, needs, nodes, Options{}).Eligible)
			}
			b.ReportMetric(float64(eligible), "eligible")
		})
	}
}
