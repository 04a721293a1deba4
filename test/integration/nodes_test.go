package integration

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// fullCapability is what an agent reports on a node that offers everything
// the scenarios use: KVM, the bridges they name (filtering VLANs, as an
// unmanaged bridge with allowedVLANs must, with every VLAN trunked on eth1),
// the uplink eth1 and an SR-IOV PF with free VFs.
func fullCapability() vmv1alpha1.NodeCapabilityStatus {
	status := vmv1alpha1.NodeCapabilityStatus{
		KVM:     &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12},
		Uplinks: []vmv1alpha1.UplinkStatus{{Name: "eth1", Up: true, Carrier: true, MTU: 1500}},
		SRIOV:   []vmv1alpha1.SRIOVPF{{Name: "ens1f0", PCIAddress: "0000:3b:00.0", Driver: "ixgbe", TotalVFs: 8, NumVFs: 8, LinkUp: true}},
	}
	for _, bridge := range []string{"br-lan", "br-mgmt"} {
		status.Bridges = append(status.Bridges, vmv1alpha1.BridgeStatus{Name: bridge, Up: true, VLANFiltering: true,
			Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true, VLANs: "1-4094", PVID: 1}}})
	}
	return status
}

// addNode creates a Node and plays its agent: a NodeCapability and a fresh Lease.
func addNode(ctx context.Context, c client.Client, name string, labels map[string]string, capability vmv1alpha1.NodeCapabilityStatus) error {
	labels[corev1.LabelHostname] = name
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(ctx, node); err != nil {
		return err
	}
	if err := report(ctx, c, name, capability); err != nil {
		return err
	}
	return renewLease(ctx, c, name, time.Hour)
}

// report writes a node's NodeCapability status, as its agent does.
func report(ctx context.Context, c client.Client, name string, capability vmv1alpha1.NodeCapabilityStatus) error {
	var existing vmv1alpha1.NodeCapability
	err := c.Get(ctx, client.ObjectKey{Name: name}, &existing)
	if apierrors.IsNotFound(err) {
		existing = vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Create(ctx, &existing); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	existing.Status = capability
	return c.Status().Update(ctx, &existing)
}

// renewLease renews a node's agent Lease for duration from now.
func renewLease(ctx context.Context, c client.Client, name string, duration time.Duration) error {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: leaseNamespace}}
	err := c.Get(ctx, client.ObjectKeyFromObject(lease), lease)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	lease.Spec.HolderIdentity = ptr.To("vmop-agent/" + name)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(duration.Seconds()))
	lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if apierrors.IsNotFound(err) {
		return c.Create(ctx, lease)
	}
	return c.Update(ctx, lease)
}
