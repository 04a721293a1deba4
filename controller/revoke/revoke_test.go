package revoke

import (
	"context"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// TestOnlyARevocationHalts: a refusal that may be transient (a HostNetwork
// not found while the cache fills) leaves a running VM and its attachment
// alone; a revocation halts the VM, marks it, and deletes the operator's
// attachment but never a user's of the same profile; a VM its user had
// stopped is left unmarked, so restoring access does not start it.
func TestOnlyARevocationHalts(t *testing.T) {
	profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1"}}
	always, halted := kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyHalted
	vmWith := func(strategy kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachine {
		return &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-vm", Labels: desired.OwnedLabels(profile),
			OwnerReferences: []metav1.OwnerReference{desired.OwnerReference(profile)}}, Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: &strategy}}
	}
	ours := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-lan", Labels: desired.OwnedLabels(profile),
		OwnerReferences: []metav1.OwnerReference{desired.OwnerReference(profile)}}}
	// A user's attachment (nadName): not labelled, not owned by the profile.
	users := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "own-net"}}
	transient := &attach.Refusal{Reason: vmv1alpha1.ReasonHostNetworkNotFound, Message: "network lan: HostNetwork lan does not exist"}
	revoked := &attach.Refusal{Reason: vmv1alpha1.ReasonNamespaceNotAllowed, Message: "network lan: HostNetwork lan does not allow namespace team-a (its namespaceSelector)",
		Revokes: true, Restore: "HostNetwork lan's spec.namespaceSelector selects namespace team-a again"}
	cases := []struct {
		name     string
		vm       *kubevirtv1.VirtualMachine
		refusal  *attach.Refusal
		strategy kubevirtv1.VirtualMachineRunStrategy
		marked   bool
		nad      bool
	}{
		{"transient", vmWith(always), transient, always, false, true},
		{"revoked", vmWith(always), revoked, halted, true, false},
		{"stopped by its user", vmWith(halted), revoked, halted, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scheme := k8sruntime.NewScheme()
			for _, add := range []func(*k8sruntime.Scheme) error{vmv1alpha1.AddToScheme, kubevirtv1.AddToScheme, nadv1.AddToScheme} {
				if err := add(scheme); err != nil {
					t.Fatal(err)
				}
			}
			cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(c.vm, ours.DeepCopy(), users.DeepCopy()).Build()
			observed := &status.Observed{}
			if err := (Revoker{Client: cl, KubeVirt: true, Multus: true}).Revoke(context.Background(), profile, c.refusal, observed); err != nil {
				t.Fatal(err)
			}
			var vm kubevirtv1.VirtualMachine
			if err := cl.Get(context.Background(), client.ObjectKeyFromObject(c.vm), &vm); err != nil {
				t.Fatal(err)
			}
			if *vm.Spec.RunStrategy != c.strategy || (vm.Annotations[vmv1alpha1.AnnotationRevoked] != "") != c.marked {
				t.Fatalf("VM runStrategy %s, annotations %v", *vm.Spec.RunStrategy, vm.Annotations)
			}
			if err := cl.Get(context.Background(), client.ObjectKeyFromObject(ours), &nadv1.NetworkAttachmentDefinition{}); (err == nil) != c.nad {
				t.Fatalf("our attachment: %v, want there: %v", err, c.nad)
			}
			if err := cl.Get(context.Background(), client.ObjectKeyFromObject(users), &nadv1.NetworkAttachmentDefinition{}); err != nil {
				t.Fatalf("the user's attachment: %v", err)
			}
			if observed.Networks.Reason != c.refusal.Reason || !observed.Networks.Fatal {
				t.Fatalf("networks check %+v", observed.Networks)
			}
		})
	}
}
