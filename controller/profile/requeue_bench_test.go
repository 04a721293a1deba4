package profile

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// requeueIndex is the requirement index of 1,000 profiles: ten groups of
// 100 on br-mgmt, each group on its own VLAN (100 to 109).
func requeueIndex(b testing.TB) *placement.Index {
	index := placement.NewIndex()
	for i := range 1000 {
		p := &vmv1alpha1.VirtualMachineProfile{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("vm-%04d", i), Namespace: "bench"},
			Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 2, Memory: "4Gi", Networks: []vmv1alpha1.NetworkConfig{
				{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, VLANID: ptr.To(int32(100 + i%10))},
			}},
		}
		attachments, refusal := attach.Resolve(p, attach.Inputs{Policy: attach.Policy{AllowUndeclared: true}})
		if refusal != nil {
			b.Fatalf("refused: %+v", refusal)
		}
		index.Set(types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, placement.Requirements(attachments), nil)
	}
	return index
}

// requeueNode is what one node's agent reports: KVM, the VLAN-filtering
// bridge br-mgmt trunking 100-110 on eth1, br-data on eth2, two uplinks.
func requeueNode() *vmv1alpha1.NodeCapabilityStatus {
	return &vmv1alpha1.NodeCapabilityStatus{
		KVM: &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12},
		Bridges: []vmv1alpha1.BridgeStatus{
			{Name: "br-mgmt", Up: true, VLANFiltering: true, Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true, VLANs: "1,100-110"}}},
			{Name: "br-data", Up: true, VLANFiltering: true, Ports: []vmv1alpha1.BridgePort{{Name: "eth2", Up: true, VLANs: "300"}}},
		},
		Uplinks: []vmv1alpha1.UplinkStatus{{Name: "eth1", Up: true, Carrier: true}, {Name: "eth2", Up: true, Carrier: true}},
	}
}

// capabilityChanges are kinds of change to one node's report, with how
// many of requeueIndex's 1,000 profiles each must wake.
var capabilityChanges = []struct {
	name   string
	change func(c *vmv1alpha1.NodeCapabilityStatus)
	wakes  int
}{
	{"unwanted-bridge-gains-a-VLAN", func(c *vmv1alpha1.NodeCapabilityStatus) { c.Bridges[1].Ports[0].VLANs = "300-301" }, 0},
	{"uplink-carrier-flap", func(c *vmv1alpha1.NodeCapabilityStatus) { c.Uplinks[1].Carrier = false }, 0},
	{"trunk-loses-VLAN-105", func(c *vmv1alpha1.NodeCapabilityStatus) { c.Bridges[0].Ports[0].VLANs = "1,100-104,106-110" }, 100},
	{"wanted-bridge-down", func(c *vmv1alpha1.NodeCapabilityStatus) { c.Bridges[0].Up = false }, 1000},
}

// woken are the profiles the capability event handler would re-queue for
// a change from requeueNode to what change makes of it.
func woken(index *placement.Index, change func(c *vmv1alpha1.NodeCapabilityStatus)) map[types.NamespacedName]bool {
	old, updated := requeueNode(), requeueNode()
	change(updated)
	out := map[types.NamespacedName]bool{}
	for label := range placement.ChangedRequirements(old, updated, index.Wanted(), nil) {
		for _, key := range index.Profiles(label) {
			out[key] = true
		}
	}
	return out
}

// BenchmarkRequeuesPerCapabilityChange reports how many of 1,000 profiles
// one node's capability change wakes, by kind of change, and what the
// mapping costs. A cluster of 10,000 nodes changes nothing here: the
// mapping reads one node's old and new report and the requirement index,
// never the other nodes or every profile.
func BenchmarkRequeuesPerCapabilityChange(b *testing.B) {
	index := requeueIndex(b)
	for _, c := range capabilityChanges {
		b.Run(c.name, func(b *testing.B) {
			var requeued int
			for b.Loop() {
				requeued = len(woken(index, c.change))
			}
			b.ReportMetric(float64(requeued), "requeues/change")
		})
	}
}

// BenchmarkNodeLabelProjection10000Nodes projects 10,000 nodes' reports to
// the labels 1,000 profiles ask for, as the node labeller does after a
// restart: the whole-cluster pass, and labels per node.
func BenchmarkNodeLabelProjection10000Nodes(b *testing.B) {
	index := requeueIndex(b)
	wanted := index.Wanted()
	nodes := make([]*vmv1alpha1.NodeCapabilityStatus, 10_000)
	for i := range nodes {
		nodes[i] = requeueNode()
	}
	var labels int
	for b.Loop() {
		labels = 0
		for _, node := range nodes {
			labels += len(placement.NodeLabels(node, wanted, nil))
		}
	}
	b.ReportMetric(float64(labels)/float64(len(nodes)), "labels/node")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(nodes)), "ns/node")
}

// TestCapabilityChangeWakesOnlyAffectedProfiles: a change nobody's
// requirement depends on wakes no profile, a VLAN leaving a trunk wakes the
// profiles on that VLAN, and the bridge going down wakes all on it.
func TestCapabilityChangeWakesOnlyAffectedProfiles(t *testing.T) {
	index := requeueIndex(t)
	for _, c := range capabilityChanges {
		if got := len(woken(index, c.change)); got != c.wakes {
			t.Errorf("%s woke %d profiles, want %d", c.name, got, c.wakes)
		}
	}
}
