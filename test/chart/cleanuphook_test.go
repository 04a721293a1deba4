package chart

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/lifecycle"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// TestCleanupHookUnderItsOwnRBAC runs the uninstall cleanup on a real
// apiserver as the chart's vmop-cleanup-hook service account, with the
// roles the chart renders for it, after an uninstall with one node down:
// an agent Pod stuck Terminating on the NotReady node, a HostNetwork
// mid-deletion, and a VM whose required affinity names a capability
// label. The hook finishes in bounded time without waiting for the stuck
// agent, leaves the label the VM needs (its affinity stays satisfiable)
// and removes the one no VM needs, keeps the deleting HostNetwork's
// finalizer and drops the other's. Its roles must allow all of it: a
// missing right (say, listing VMs) fails the hook.
func TestCleanupHookUnderItsOwnRBAC(t *testing.T) {
	cp, err := controlplane.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx := context.Background()
	hookAccount := releaseName + "-cleanup-hook"

	objects := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}},
	}
	for _, obj := range render(t) {
		switch obj.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if obj.GetName() == hookAccount {
				objects = append(objects, obj)
			}
		}
	}
	if len(objects) != 7 {
		t.Fatalf("the chart renders %d objects for %s, want its ServiceAccount, ClusterRole(Binding) and Role(Binding)", len(objects)-2, hookAccount)
	}
	ready := corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	objects = append(objects,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{
			"cap.vm.example.com/kvm": "true", "cap.vm.example.com/sriov": "true", "kubernetes.io/hostname": "node-a"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-down", Labels: map[string]string{"cap.vm.example.com/kvm": "true"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-agent-down", Namespace: namespace,
			Labels:     map[string]string{"app.kubernetes.io/instance": releaseName, "app.kubernetes.io/component": "agent"},
			Finalizers: []string{"example.com/stuck"}}, // stays Terminating, as on a node that is down
			Spec: corev1.PodSpec{NodeName: "node-down", AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: "agent", Image: "registry.local/vmop-agent"}}}},
		&vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "going", Finalizers: []string{"vm.example.com/hostnetwork"}},
			Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-going"}},
		&vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "kept", Finalizers: []string{"vm.example.com/hostnetwork"}},
			Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-kept"}},
		&vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lifecycle.LeaderLease, Namespace: namespace}},
		&kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "web-vm", Namespace: "tenant"},
			Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: ptr.To(kubevirtv1.RunStrategyAlways),
				Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{Devices: kubevirtv1.Devices{}},
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
						NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
							{Key: "cap.vm.example.com/kvm", Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}}}}}}}}}}}},
	)
	for _, obj := range objects {
		if err := cp.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	}
	for name, status := range map[string]corev1.NodeStatus{"node-a": ready,
		"node-down": {Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown"}}}} {
		node := &corev1.Node{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
			t.Fatal(err)
		}
		node.Status = status
		if err := cp.Client.Status().Update(ctx, node); err != nil {
			t.Fatalf("Node %s status: %v", name, err)
		}
	}
	for _, obj := range []client.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-agent-down", Namespace: namespace}},
		&vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "going"}},
	} {
		if err := cp.Client.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // let the control plane delete the stuck Pod on Stop
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-agent-down", Namespace: namespace}}
		_ = cp.Client.Patch(ctx, pod, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
	})

	var log strings.Builder
	hook := lifecycle.Cleanup{Client: as(t, cp, "system:serviceaccount:"+namespace+":"+hookAccount, nil),
		Namespace: namespace, Release: releaseName, Timeout: 30 * time.Second, Log: &log}
	started := time.Now()
	report, err := hook.Run(ctx)
	took := time.Since(started)
	t.Logf("the cleanup took %v and said:\n%s", took.Round(10*time.Millisecond), log.String())
	if err != nil {
		t.Fatalf("cleanup as %s: %v", hookAccount, err)
	}
	if took > 10*time.Second {
		t.Errorf("the cleanup took %v: it waited for the agent on the down node", took)
	}
	if report.AgentPodsSkipped != 1 || report.NodeLabelsKept != 1 || report.HostNetworksDeleting != 1 || report.HostNetworkFinalizers != 1 {
		t.Errorf("report %+v", report)
	}

	var node corev1.Node
	if err := cp.Client.Get(ctx, client.ObjectKey{Name: "node-a"}, &node); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"cap.vm.example.com/kvm": "true", "kubernetes.io/hostname": "node-a"}; !maps.Equal(node.Labels, want) {
		t.Errorf("node-a labels %v, want %v: the VM's affinity must stay satisfiable", node.Labels, want)
	}
	for name, wantFinalizer := range map[string]bool{"going": true, "kept": false} {
		var hn vmv1alpha1.HostNetwork
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, &hn); err != nil {
			t.Fatalf("HostNetwork %s: %v", name, err)
		}
		if got := slices.Contains(hn.Finalizers, "vm.example.com/hostnetwork"); got != wantFinalizer {
			t.Errorf("HostNetwork %s keeps its finalizer: %v, want %v", name, got, wantFinalizer)
		}
	}
	var caps vmv1alpha1.NodeCapabilityList
	if err := cp.Client.List(ctx, &caps); err != nil || len(caps.Items) != 0 {
		t.Errorf("NodeCapabilities left: %d (%v)", len(caps.Items), err)
	}
}
