package lifecycle

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
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
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b", Labels: map[string]string{"kubernetes.io/hostname": "node-b"}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
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
	t.Parallel() // each case waits out its 1.5 s timeout on a fake client of its own
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for name, extra := range map[string]client.Object{
		"controller Pod": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vmop-controller-1", Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/instance": "vmop", "app.kubernetes.io/component": "controller"}}},
		"agent Pod": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vmop-agent-x", Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/instance": "vmop", "app.kubernetes.io/component": "agent"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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

// vmRequiring is a KubeVirt VM whose template requires the node labels
// keys (In "true"), as the controller builds it.
func vmRequiring(name string, keys ...string) *kubevirtv1.VirtualMachine {
	var term corev1.NodeSelectorTerm
	for _, key := range keys {
		term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}})
	}
	return &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tenant"},
		Spec: kubevirtv1.VirtualMachineSpec{Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{term}}}}}}}}
}

// TestCleanupKeepsTheLabelsVMsRequire: a VM requiring cap.vm.example.com/kvm
// (and a running instance requiring a label its VM's template no longer
// names) must stay schedulable after uninstall, so those labels stay on
// every node; the label no VM names and the annotations go.
func TestCleanupKeepsTheLabelsVMsRequire(t *testing.T) {
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "tenant"},
		Spec: vmRequiring("db", "cap.vm.example.com/bridge.br-old").Spec.Template.Spec}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-c", Labels: map[string]string{
		"cap.vm.example.com/kvm": "true", "cap.vm.example.com/bridge.br-old": "true", "cap.vm.example.com/sriov": "true", "kubernetes.io/hostname": "node-c"},
		Annotations: map[string]string{"cap.vm.example.com/absent-since": "x"}}}
	c := installed(vmRequiring("web-vm", "cap.vm.example.com/kvm"), vmRequiring("db", "cap.vm.example.com/kvm"), vmi, node)
	var log strings.Builder
	report, err := Cleanup{Client: c, Namespace: ns, Release: "vmop", Timeout: time.Second, Log: &log}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if report.NodeLabelsKept != 2 || report.NodesUnlabelled != 2 {
		t.Errorf("report %+v, want 2 label keys kept and 2 nodes changed", report)
	}
	want := map[string]map[string]string{
		"node-a": {"cap.vm.example.com/kvm": "true", "kubernetes.io/hostname": "node-a"},
		"node-c": {"cap.vm.example.com/kvm": "true", "cap.vm.example.com/bridge.br-old": "true", "kubernetes.io/hostname": "node-c"},
	}
	for name, labels := range want {
		var node corev1.Node
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(node.Labels, labels) {
			t.Errorf("Node %s labels %v, want %v", name, node.Labels, labels)
		}
		if _, left := node.Annotations["cap.vm.example.com/absent-since"]; left {
			t.Errorf("Node %s keeps our annotation", name)
		}
	}
	for _, said := range []string{"kept node label cap.vm.example.com/kvm", "VM tenant/db, VM tenant/web-vm", "VMI tenant/db"} {
		if !strings.Contains(log.String(), said) {
			t.Errorf("log does not say %q:\n%s", said, log.String())
		}
	}
}

// TestCleanupKeepsTheFinalizerOfADeletingHostNetwork: dropping it would
// let the garbage collector delete the nmstate policy with no revert.
func TestCleanupKeepsTheFinalizerOfADeletingHostNetwork(t *testing.T) {
	deleting := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "going", Finalizers: []string{"vm.example.com/hostnetwork"}}}
	c := installed(deleting)
	if err := c.Delete(context.Background(), deleting); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	report, err := Cleanup{Client: c, Namespace: ns, Release: "vmop", Timeout: time.Second, Log: &log}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if report.HostNetworkFinalizers != 1 || report.HostNetworksDeleting != 1 {
		t.Errorf("report %+v, want the finalizer dropped from mgmt only", report)
	}
	var hn vmv1alpha1.HostNetwork
	if err := c.Get(context.Background(), client.ObjectKey{Name: "going"}, &hn); err != nil {
		t.Fatalf("HostNetwork going: %v (its finalizer was dropped, so it was deleted)", err)
	}
	if hn.DeletionTimestamp == nil || !slices.Contains(hn.Finalizers, "vm.example.com/hostnetwork") {
		t.Errorf("HostNetwork going: deletionTimestamp %v finalizers %v", hn.DeletionTimestamp, hn.Finalizers)
	}
	if !strings.Contains(log.String(), "kept finalizer vm.example.com/hostnetwork on HostNetwork going") {
		t.Errorf("log does not say the finalizer was kept:\n%s", log.String())
	}
}

// TestCleanupDoesNotWaitForAgentsOnDownNodes: an agent Pod on a NotReady
// node, or on a node that is gone, stays Terminating forever; the cleanup
// logs it and proceeds. An agent on a Ready node is still waited for.
func TestCleanupDoesNotWaitForAgentsOnDownNodes(t *testing.T) {
	t.Parallel() // a fake client of its own; it waits on timers, not the CPU
	agent := func(name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/instance": "vmop", "app.kubernetes.io/component": "agent"}},
			Spec: corev1.PodSpec{NodeName: node}}
	}
	down := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-down"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}}}
	c := installed(down, agent("vmop-agent-down", "node-down"), agent("vmop-agent-gone", "node-gone"))
	var log strings.Builder
	started := time.Now()
	report, err := Cleanup{Client: c, Namespace: ns, Release: "vmop", Timeout: 5 * time.Second, Log: &log}.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("the cleanup took %v: it waited for the agents on down nodes", took)
	}
	if report.AgentPodsSkipped != 2 || report.NodeCapabilities != 1 {
		t.Errorf("report %+v, want 2 agent Pods skipped and the cleanup done", report)
	}
	for _, said := range []string{"vmop-agent-down (Node node-down is NotReady", "vmop-agent-gone (Node node-gone is gone)"} {
		if !strings.Contains(log.String(), said) {
			t.Errorf("log does not say %q:\n%s", said, log.String())
		}
	}

	c = installed(agent("vmop-agent-b", "node-b"))
	_, err = Cleanup{Client: c, Namespace: ns, Release: "vmop", Timeout: 1500 * time.Millisecond}.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vmop-agent-b") {
		t.Errorf("error %v, want the wait for the agent on Ready node-b to time out naming it", err)
	}
}
