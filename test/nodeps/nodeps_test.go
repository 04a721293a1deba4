// Package nodeps runs vmop-controller on a cluster without KubeVirt and CDI:
// the missing dependencies are reported on the profile, nothing crashes, and
// what does not need them (network attachments, blank disks, cloud-init) is
// still prepared.
package nodeps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

func TestMissingKubeVirtAndCDIAreReportedNotFatal(t *testing.T) {
	cp, err := controlplane.Start(controlplane.WithoutCRDs("kubevirt.io_", "instancetype.kubevirt.io_", "cdi.kubevirt.io_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	mgr, err := manager.New(cp.Config, manager.Options{MetricsAddress: "0", ProbeAddress: "0", Logger: logr.Discard(), MetricsRegistry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("the controller must start without KubeVirt and CDI: %v", err)
	}
	go func() { _ = mgr.Start(ctx) }()

	lan := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: vmv1alpha1.HostNetworkSpec{
		Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lan", NamespaceSelector: metav1.LabelSelector{}}}
	if err := cp.Client.Create(ctx, lan); err != nil {
		t.Fatal(err)
	}
	profile := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "partial", Namespace: "default"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{
			CPU: 1, Memory: "1Gi", OSImage: "registry.local/os:1",
			Networks: []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge}},
			Disks: []vmv1alpha1.DiskConfig{
				{Name: "system", Size: "10Gi", Boot: true},
				{Name: "data", Size: "5Gi"},
			},
		},
	}
	if err := cp.Client.Create(ctx, profile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got vmv1alpha1.VirtualMachineProfile
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(profile), &got); err != nil {
			t.Fatal(err)
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, vmv1alpha1.ConditionReady)
		volumes := meta.FindStatusCondition(got.Status.Conditions, vmv1alpha1.ConditionVolumesBound)
		if ready != nil && volumes != nil && ready.Reason == vmv1alpha1.ReasonDependencyMissing && volumes.Reason == vmv1alpha1.ReasonDependencyMissing {
			if !strings.Contains(ready.Message+volumes.Message, "KubeVirt") || !strings.Contains(volumes.Message, "CDI") {
				t.Fatalf("messages should name what is missing: %q / %q", ready.Message, volumes.Message)
			}
			if got.Status.Phase != vmv1alpha1.PhasePending {
				t.Fatalf("phase %s, want Pending", got.Status.Phase)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dependencies not reported: %+v", got.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What does not need KubeVirt or CDI was still prepared.
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "partial-lan"}, &nadv1.NetworkAttachmentDefinition{}); err != nil {
		t.Errorf("network attachment: %v", err)
	}
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "partial-data"}, &corev1.PersistentVolumeClaim{}); err != nil {
		t.Errorf("blank disk claim: %v", err)
	}
	// Cloud-init goes inline in the VM, which waits for KubeVirt: no
	// Secret is written for it (the controller may not read Secrets).
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "partial-cloudinit"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("cloud-init Secret: %v, want none written", err)
	}
}
