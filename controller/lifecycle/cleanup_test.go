package lifecycle

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/manager"
)

const ns = "vmop-system"

func installed(extra ...client.Object) client.Client {
	objects := []client.Object{
		&vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "tenant",
			Finalizers: []string{"vm.example.com/cleanup", "example.com/keep"}}},
		&vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "mgmt", Finalizers: []string{"vm.example.com/hostnetwork"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a",
			Labels:      map[string]string{"cap.vm.example.com/kvm": "true", "kubernetes.io/hostname": "node-a"},
			Annotations: map[string]string{"cap.vm.example.com/absent-since": "x", "other": "kept"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b", Labels: map[string]string{"kubernetes.io/hostname": "node-b"}}},
		&vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "node-a", UID: "u"}}}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaderLease, Namespace: ns}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: ns}},
	}
	return fake.NewClientBuilder().WithScheme(manager.NewScheme()).WithObjects(append(objects, extra...)...).Build()
}

func TestCleanupRemovesOnlyWhatTheOperatorNeeds(t *testing.T) {
	c := installed()
	var log strings.Builder
	report, err := Cleanup{Client: c, Namespace: ns, Release: "vmop", Timeout: time.Second, Log: &log}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Report{ProfileFinalizers: 1, HostNetworkFinalizers: 1, NodesUnlabelled: 1, NodeCapabilities: 1, Leases: 2}
	if report != want {
		t.Errorf("report %+v, want %+v", report, want)
	}
	ctx := context.Background()
	var profile vmv1alpha1.VirtualMachineProfile
	if err := c.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: "web"}, &profile); err != nil {
		t.Fatal(err)
	}
	if strings.Join(profile.Finalizers, ",") != "example.com/keep" {
		t.Errorf("profile finalizers %v, want only the foreign one", profile.Finalizers)
	}
	var hn vmv1alpha1.HostNetwork
	if err := c.Get(ctx, client.ObjectKey{Name: "mgmt"}, &hn); err != nil || len(hn.Finalizers) != 0 {
		t.Errorf("HostNetwork kept, without finalizer: %v %v", err, hn.Finalizers)
	}
	var node corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: "node-a"}, &node); err != nil {
		t.Fatal(err)
	}
	if len(node.Labels) != 1 || node.Labels["kubernetes.io/hostname"] != "node-a" || len(node.Annotations) != 1 || node.Annotations["other"] != "kept" {
		t.Errorf("node-a labels %v annotations %v", node.Labels, node.Annotations)
	}
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != 1 || leases.Items[0].Name != "someone-elses" {
		t.Errorf("leases left %v, want only the foreign one", leases.Items)
	}
	if !strings.Contains(log.String(), "kept: profiles, VMs, disks") {
		t.Errorf("log does not say what was kept:\n%s", log.String())
	}
}

func TestCleanupWaitsForTheComponents(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for name, extra := range map[string]client.Object{
		"controller Pod": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vmop-controller-1", Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/instance": "vmop", "app.kubernetes.io/component": "controller"}}},
		"agent Pod": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vmop-agent-x", Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/instance": "vmop", "app.kubernetes.io/component": "agent"}}},
	} {
		t.Run(name, func(t *testing.T) {
			c := installed(extra)
			_, err := Cleanup{Client: c, Namespace: ns, Release: "vmop", Timeout: 1500 * time.Millisecond, Now: func() time.Time { return now }}.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), extra.GetName()) || !strings.Contains(err.Error(), "nothing was cleaned up") {
				t.Fatalf("error %v, want it to name the Pod and say nothing was cleaned up", err)
			}
			var caps vmv1alpha1.NodeCapabilityList
			if err := c.List(context.Background(), &caps); err != nil || len(caps.Items) != 1 {
				t.Errorf("NodeCapabilities touched while a component ran: %v %d", err, len(caps.Items))
			}
		})
	}
}

func TestLeaderLeaseHeldOnlyWhileRenewed(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	lease := func(holder string, renewed time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime: &metav1.MicroTime{Time: now.Add(-renewed)}}}
	}
	cases := []struct {
		lease *coordinationv1.Lease
		held  bool
	}{
		{lease("pod-1", 5*time.Second), true},
		{lease("pod-1", 20*time.Second), false}, // expired: the leader died without handing it back
		{lease("", 5*time.Second), false},       // handed back on shutdown
		{&coordinationv1.Lease{}, false},
	}
	for i, c := range cases {
		if got := leaseHeld(c.lease, now); got != c.held {
			t.Errorf("case %d: held = %v, want %v", i, got, c.held)
		}
	}
}
