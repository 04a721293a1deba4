package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// handEdit changes an object the way kubectl edit does: an update under
// another field manager.
func handEdit(t *testing.T, obj client.Object, change func()) {
	t.Helper()
	// The simulator and the controller write the object too; like kubectl
	// edit, read it again and redo the change when the write conflicts.
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return cluster.Client.Update(ctx, obj, client.FieldOwner("kubectl-edit"))
	})
	if err != nil {
		t.Fatalf("hand edit of %s: %v", obj.GetName(), err)
	}
}

// TestHandEditsAreRepaired: a hand edit of a field the controller sets is
// undone by the next reconcile; a field someone else added is kept.
func TestHandEditsAreRepaired(t *testing.T) {
	ns := newNamespace(t)
	create(t, profile("drift", ns))
	waitForPhase(t, ns, "drift", vmv1alpha1.PhaseRunning)

	var nad nadv1.NetworkAttachmentDefinition
	getObject(t, &nad, ns, "drift-lan")
	want := nad.Spec.Config
	handEdit(t, &nad, func() {
		nad.Spec.Config = `{"cniVersion":"0.3.1","name":"drift-lan","type":"bridge","bridge":"br-ex","ipam":{}}`
		nad.Labels["team"] = "netops"
	})
	observe.Eventually(t, 30*time.Second, "attachment config restored, foreign label kept", func() (bool, string) {
		getObject(t, &nad, ns, "drift-lan")
		return nad.Spec.Config == want && nad.Labels["team"] == "netops", fmt.Sprintf("config %s labels %v", nad.Spec.Config, nad.Labels)
	})

	var vm kubevirtv1.VirtualMachine
	getObject(t, &vm, ns, "drift-vm")
	handEdit(t, &vm, func() {
		vm.Spec.Template.Spec.Domain.CPU.Cores = 8
		vm.Spec.Template.Spec.Domain.CPU.Model = "host-passthrough" // a field the profile does not set
	})
	observe.Eventually(t, 30*time.Second, "VM cores restored, foreign CPU model kept", func() (bool, string) {
		getObject(t, &vm, ns, "drift-vm")
		cpu := vm.Spec.Template.Spec.Domain.CPU
		return cpu.Cores == 1 && cpu.Model == "host-passthrough", fmt.Sprintf("cores %d model %q", cpu.Cores, cpu.Model)
	})

	// The cloud-init network data lives inline in the VM: edited there, it is restored there.
	networkData := cloudInitOf(t, &vm).NetworkData
	handEdit(t, &vm, func() { cloudInitOf(t, &vm).NetworkData = "version: 2\nethernets: {}\n" })
	observe.Eventually(t, 30*time.Second, "cloud-init network data restored", func() (bool, string) {
		getObject(t, &vm, ns, "drift-vm")
		got := cloudInitOf(t, &vm).NetworkData
		return got == networkData, got
	})
}

// TestVirtctlStopIsKeptUntilTheProfileChanges: virtctl stop sets the VM's
// runStrategy to Halted through KubeVirt's stop subresource (virt-api
// patches the VM). The controller keeps that choice through unrelated
// changes, and the profile wins again when its own run strategy changes.
func TestVirtctlStopIsKeptUntilTheProfileChanges(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, profile("stoppable", ns))
	waitForPhase(t, ns, "stoppable", vmv1alpha1.PhaseRunning)

	// What virt-api does for `virtctl stop stoppable-vm`.
	vm := &kubevirtv1.VirtualMachine{}
	getObject(t, vm, ns, "stoppable-vm")
	stop := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"runStrategy":"Halted"}}`))
	if err := cluster.Client.Patch(ctx, vm, stop, client.FieldOwner("virt-api")); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "stoppable", vmv1alpha1.PhaseStopped)

	p := getProfile(t, ns, "stoppable")
	p.Spec.CPU = 2 // an unrelated change: the VM is re-applied
	if err := cluster.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "CPU applied, VM still halted", func() (bool, string) {
		getObject(t, vm, ns, "stoppable-vm")
		return vm.Spec.Template.Spec.Domain.CPU.Cores == 2 && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyHalted,
			fmt.Sprintf("cores %d runStrategy %s", vm.Spec.Template.Spec.Domain.CPU.Cores, *vm.Spec.RunStrategy)
	})
	if got := getProfile(t, ns, "stoppable").Status.Phase; got != vmv1alpha1.PhaseStopped {
		t.Fatalf("phase %s, want Stopped", got)
	}

	p = getProfile(t, ns, "stoppable")
	p.Spec.StartStrategy = &vmv1alpha1.StartStrategySpec{RunStrategy: vmv1alpha1.RunStrategyRerunOnFailure, AutoStart: ptr.To(true)}
	if err := cluster.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "stoppable", vmv1alpha1.PhaseRunning)
	getObject(t, vm, ns, "stoppable-vm")
	if *vm.Spec.RunStrategy != kubevirtv1.RunStrategyRerunOnFailure {
		t.Fatalf("runStrategy %s, want the profile's RerunOnFailure", *vm.Spec.RunStrategy)
	}
}
