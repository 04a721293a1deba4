//go:build integration

package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/probe/probetest"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// storedBytes reads the NodeCapability back and measures it as etcd holds
// it: JSON, metadata and managedFields included.
func storedBytes(t *testing.T, name string) (total, managedFields int, stored *vmv1alpha1.NodeCapability) {
	t.Helper()
	stored = &vmv1alpha1.NodeCapability{}
	if err := cp.Client.Get(context.Background(), client.ObjectKey{Name: name}, stored); err != nil {
		t.Fatal(err)
	}
	all, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	fields, err := json.Marshal(stored.ManagedFields)
	if err != nil {
		t.Fatal(err)
	}
	return len(all), len(fields), stored
}

// TestLargestNodesAreAcceptedWithinTheBound publishes the capability of a
// node with a bridge for each of the 4,094 VLANs (and a trunk of all of
// them) to the real apiserver, changes it, and checks the stored object
// stays within capability.MaxObjectBytes; then the same for a node three
// times that size, which the agent cuts to fit and says so.
func TestLargestNodesAreAcceptedWithinTheBound(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		links     probe.Snapshot
		truncated bool
	}{
		{name: "4,094 VLAN bridges", links: probetest.VLANNode()},
		{name: "three NICs of 4,094 VLAN bridges", links: probetest.VLANNode("eth1", "eth2", "eth3"), truncated: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := createNode(t, fmt.Sprintf("node-size-%d", i))
			writes := prometheus.NewCounter(prometheus.CounterOpts{Name: "writes"})
			pub := NewPublisher(cp.Client, node.Name, writes)
			built := capability.Build(capability.Input{KVM: vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}, Links: tc.links})
			if _, err := pub.Publish(ctx, built); err != nil {
				t.Fatalf("create: %v", err)
			}
			// A bridge going down rewrites the whole status: an update of the same size.
			built.Bridges[0].Up = false
			if _, err := pub.Publish(ctx, built); err != nil {
				t.Fatalf("update: %v", err)
			}
			if got := testutil.ToFloat64(writes); got != 3 {
				t.Fatalf("%v writes, want a create and two status updates", got)
			}
			total, fields, stored := storedBytes(t, node.Name)
			t.Logf("stored NodeCapability: %d bytes (%.2f MiB), of which managedFields %d; bound %d", total, float64(total)/(1<<20), fields, capability.MaxObjectBytes)
			if total > capability.MaxObjectBytes {
				t.Errorf("stored object of %d bytes is over the bound of %d", total, capability.MaxObjectBytes)
			}
			if stored.Status.Bridges[0].Up || len(stored.Status.Bridges) != len(built.Bridges) {
				t.Error("the stored status is not the one published")
			}
			c := meta.FindStatusCondition(stored.Status.Conditions, vmv1alpha1.ConditionTruncated)
			if (c != nil) != tc.truncated {
				t.Errorf("Truncated condition %+v, want one: %v", c, tc.truncated)
			}
		})
	}
}
