package hostnetwork

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestStatusWriteCarriesANewConditionMessage: a Ready condition whose
// status stays False but whose message changes (a node's agent reported)
// reaches the apiserver, with and without other status fields changing.
// Found on make dev's environment: HostNetworks declared before the agents
// reported kept "verified on 0 of 2 node(s)" while ready said 1/2.
func TestStatusWriteCarriesANewConditionMessage(t *testing.T) {
	scheme := k8sruntime.NewScheme()
	if err := vmv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ready := func(message string) []metav1.Condition {
		return []metav1.Condition{{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "NodesNotVerified", Message: message}}
	}
	for name, next := range map[string]vmv1alpha1.HostNetworkStatus{
		"message only":       {Ready: "0/2", Conditions: ready("verified on 1 of 2 node(s); node-b: ...")},
		"message and fields": {Ready: "1/2", VerifiedNodes: 1, Conditions: ready("verified on 1 of 2 node(s); node-b: ...")},
	} {
		t.Run(name, func(t *testing.T) {
			stored := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "mgmt", Generation: 1},
				Status: vmv1alpha1.HostNetworkStatus{Ready: "0/2", Conditions: ready("verified on 0 of 2 node(s); node-a: no NodeCapability")}}
			cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(stored).WithStatusSubresource(stored).Build()
			var current vmv1alpha1.HostNetwork
			if err := cl.Get(context.Background(), client.ObjectKeyFromObject(stored), &current); err != nil {
				t.Fatal(err)
			}
			r := &Reconciler{Client: cl}
			if err := r.writeStatus(context.Background(), current.DeepCopy(), &current, next); err != nil {
				t.Fatal(err)
			}
			var got vmv1alpha1.HostNetwork
			if err := cl.Get(context.Background(), client.ObjectKeyFromObject(stored), &got); err != nil {
				t.Fatal(err)
			}
			if c := meta.FindStatusCondition(got.Status.Conditions, vmv1alpha1.ConditionReady); c == nil || c.Message != next.Conditions[0].Message {
				t.Errorf("Ready condition stored %+v, want message %q", c, next.Conditions[0].Message)
			}
		})
	}
}
