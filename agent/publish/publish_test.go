//go:build integration

package publish

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	controlplane.RunTests(m, &cp)
}

func createNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Client.Delete(context.Background(), node) })
	return node
}

func status(bridgeUp bool, kvmReason string) vmv1alpha1.NodeCapabilityStatus {
	cond := func(typ string, ok bool) metav1.Condition {
		c := metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: "Fine", Message: "fine"}
		if !ok {
			c.Status, c.Reason = metav1.ConditionFalse, "Broken"
		}
		return c
	}
	return vmv1alpha1.NodeCapabilityStatus{
		KVM:     &vmv1alpha1.KVMStatus{Available: kvmReason == "", APIVersion: 12, Reason: kvmReason},
		Bridges: []vmv1alpha1.BridgeStatus{{Name: "br0", Up: bridgeUp, MTU: 1500, Ports: []vmv1alpha1.BridgePort{{Name: "p0", Up: bridgeUp}}}},
		Conditions: []metav1.Condition{
			cond(vmv1alpha1.ConditionReady, true),
			cond(vmv1alpha1.ConditionKVMReady, kvmReason == ""),
			cond(vmv1alpha1.ConditionNetworkReady, bridgeUp),
		},
	}
}

func TestPublishWritesOnlyOnChange(t *testing.T) {
	ctx := context.Background()
	node := createNode(t, "node-publish")
	writes := prometheus.NewCounter(prometheus.CounterOpts{Name: "writes"})
	pub := NewPublisher(cp.Client, node.Name, writes)
	clock := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	pub.now = func() time.Time { return clock }

	steps := []struct {
		name       string
		publisher  *Publisher
		status     vmv1alpha1.NodeCapabilityStatus
		wantWrote  bool
		wantWrites float64
	}{
		{name: "first publish creates and writes status", publisher: pub, status: status(true, ""), wantWrote: true, wantWrites: 2},
		{name: "same status again: nothing", publisher: pub, status: status(true, ""), wantWrote: false, wantWrites: 2},
		{name: "bridge down: one write", publisher: pub, status: status(false, ""), wantWrote: true, wantWrites: 3},
		{name: "restarted agent, same node: nothing", publisher: NewPublisher(cp.Client, node.Name, writes), status: status(false, ""), wantWrote: false, wantWrites: 3},
	}
	for _, step := range steps {
		clock = clock.Add(time.Minute) // time passing alone must not cause writes
		wrote, err := step.publisher.Publish(ctx, step.status)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if wrote != step.wantWrote || testutil.ToFloat64(writes) != step.wantWrites {
			t.Errorf("%s: wrote=%v writes=%v, want wrote=%v writes=%v", step.name, wrote, testutil.ToFloat64(writes), step.wantWrote, step.wantWrites)
		}
	}

	stored := &vmv1alpha1.NodeCapability{}
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: node.Name}, stored); err != nil {
		t.Fatal(err)
	}
	owners := stored.OwnerReferences
	if len(owners) != 1 || owners[0].Kind != "Node" || owners[0].UID != node.UID || owners[0].Name != node.Name {
		t.Errorf("owner references = %+v, want the Node %s (%s)", owners, node.Name, node.UID)
	}
	if stored.Status.Bridges[0].Up {
		t.Errorf("stored bridge is up, want the last published (down) state")
	}
	// Ready and KVMReady never changed status: their time is the first publish's.
	first := metav1.NewTime(time.Date(2026, 11, 27, 8, 1, 0, 0, time.UTC))
	for _, c := range stored.Status.Conditions {
		want := first
		if c.Type == vmv1alpha1.ConditionNetworkReady {
			want = metav1.NewTime(first.Add(2 * time.Minute)) // flipped at the third step
		}
		if !c.LastTransitionTime.Equal(&want) {
			t.Errorf("%s: LastTransitionTime %v, want %v", c.Type, c.LastTransitionTime.UTC(), want.UTC())
		}
	}
}

func TestPublishNeedsTheNode(t *testing.T) {
	pub := NewPublisher(cp.Client, "no-such-node", prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}))
	_, err := pub.Publish(context.Background(), status(true, ""))
	if err == nil {
		t.Fatal("published a capability for a node that does not exist")
	}
	t.Logf("error, as wanted: %v", err)
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := cp.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseRenewal(t *testing.T) {
	ctx := context.Background()
	createNamespace(t, "vmop-lease-test")
	node := createNode(t, "node-lease")
	lease := NewLease(cp.Client, "vmop-lease-test", node.Name, 40*time.Second)
	clock := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	lease.now = func() time.Time { return clock }
	var renewTimes []time.Time
	for range 3 {
		if err := lease.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		stored := &coordinationv1.Lease{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "vmop-lease-test", Name: node.Name}, stored); err != nil {
			t.Fatal(err)
		}
		if *stored.Spec.LeaseDurationSeconds != 40 || *stored.Spec.HolderIdentity != "vmop-agent/node-lease" {
			t.Errorf("lease spec = %+v", stored.Spec)
		}
		renewTimes = append(renewTimes, stored.Spec.RenewTime.Time)
		clock = clock.Add(10 * time.Second)
	}
	for i := 1; i < len(renewTimes); i++ {
		if got := renewTimes[i].Sub(renewTimes[i-1]); got != 10*time.Second {
			t.Errorf("renewal %d moved renewTime by %v, want 10s", i, got)
		}
	}
}

// wantNodeOwner checks the Lease is owned by exactly the Node.
func wantNodeOwner(t *testing.T, lease *coordinationv1.Lease, node *corev1.Node) {
	t.Helper()
	owners := lease.OwnerReferences
	if len(owners) != 1 || owners[0].APIVersion != "v1" || owners[0].Kind != "Node" || owners[0].Name != node.Name || owners[0].UID != node.UID {
		t.Errorf("Lease %s owner references = %+v, want the Node %s (%s)", lease.Name, owners, node.Name, node.UID)
	}
}

// TestLeaseOwnedByNode: a new Lease is owned by its Node; a Lease an older
// agent left without an owner gets it on the next renewal, keeping its
// other fields; no Lease is made for a Node that does not exist, since
// nothing would ever collect it.
func TestLeaseOwnedByNode(t *testing.T) {
	ctx := context.Background()
	const namespace = "vmop-lease-owner"
	createNamespace(t, namespace)
	get := func(name string) (*coordinationv1.Lease, error) {
		lease := &coordinationv1.Lease{}
		return lease, cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, lease)
	}

	t.Run("created with the owner", func(t *testing.T) {
		node := createNode(t, "node-lease-new")
		if err := NewLease(cp.Client, namespace, node.Name, 40*time.Second).Renew(ctx); err != nil {
			t.Fatal(err)
		}
		lease, err := get(node.Name)
		if err != nil {
			t.Fatal(err)
		}
		wantNodeOwner(t, lease, node)
	})

	t.Run("owner added on renewal", func(t *testing.T) {
		node := createNode(t, "node-lease-old")
		acquired := metav1.NewMicroTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		old := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: node.Name, Labels: map[string]string{"kept": "yes"}},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To("vmop-agent/" + node.Name), LeaseDurationSeconds: ptr.To(int32(40)),
				AcquireTime: &acquired, RenewTime: &acquired,
			},
		}
		if err := cp.Client.Create(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := NewLease(cp.Client, namespace, node.Name, 40*time.Second).Renew(ctx); err != nil {
			t.Fatal(err)
		}
		lease, err := get(node.Name)
		if err != nil {
			t.Fatal(err)
		}
		wantNodeOwner(t, lease, node)
		if lease.Labels["kept"] != "yes" || !lease.Spec.AcquireTime.Equal(&acquired) || !lease.Spec.RenewTime.After(acquired.Time) {
			t.Errorf("renewal lost fields or did not renew: labels %v, spec %+v", lease.Labels, lease.Spec)
		}
	})

	t.Run("no Lease without its Node", func(t *testing.T) {
		err := NewLease(cp.Client, namespace, "node-lease-missing", 40*time.Second).Renew(ctx)
		if err == nil || !strings.Contains(err.Error(), "node-lease-missing") {
			t.Errorf("err = %v, want one naming the missing Node", err)
		}
		if _, err := get("node-lease-missing"); !apierrors.IsNotFound(err) {
			t.Errorf("a Lease exists for a Node that does not (get: %v)", err)
		}
	})
}

// TestNodeDeletionRemovesCapabilityAndLease runs the real garbage
// collector: the Node owns its capability and its Lease (a namespaced
// dependent of a cluster-scoped owner), so deleting the Node removes both,
// and deleting an agent pod, which owns nothing, removes neither.
func TestNodeDeletionRemovesCapabilityAndLease(t *testing.T) {
	ctx := context.Background()
	if err := cp.StartGarbageCollector(); err != nil {
		t.Fatal(err)
	}
	const namespace = "vmop-lease-gc"
	createNamespace(t, namespace)
	node := createNode(t, "node-gc")
	pub := NewPublisher(cp.Client, node.Name, prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}))
	if _, err := pub.Publish(ctx, status(true, "")); err != nil {
		t.Fatal(err)
	}
	if err := NewLease(cp.Client, namespace, node.Name, 40*time.Second).Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Delete(ctx, node); err != nil {
		t.Fatal(err)
	}
	for what, obj := range map[string]client.Object{
		"NodeCapability": &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: node.Name}},
		"Lease":          &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: node.Name}},
	} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there 60s after its Node was deleted (last error: %v)", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
