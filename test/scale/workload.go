package scale

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// Profile is the seed's test VM (config/samples/vm_v1alpha1_virtualmachineprofile.yaml: one
// bridge network on VLAN 100, a 20Gi boot disk) named and addressed for
// the i-th profile of a run: every address is unique, so no two profiles
// contend for one.
func Profile(namespace string, i int) *vmv1alpha1.VirtualMachineProfile {
	address := netip.AddrFrom4([4]byte{10, byte((i + 1) >> 16), byte((i + 1) >> 8), byte(i + 1)})
	return &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("vm-%05d", i), Namespace: namespace},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{
			CPU:    2,
			Memory: "4Gi",
			Networks: []vmv1alpha1.NetworkConfig{{
				Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, VLANID: ptr.To[int32](100),
				IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To(address.String() + "/8")},
			}},
			Disks: []vmv1alpha1.DiskConfig{{Name: "system", Size: "20Gi", StorageClassName: StorageClass, Boot: true}},
		},
	}
}

// Children are the objects the controller makes for one such profile
// (NetworkAttachmentDefinition, PVC, VirtualMachine with its cloud-init
// inline), as
// its own builders make them, without owner references: the raw client's
// share of the benchmark, so that both sides write the same objects.
func Children(profile *vmv1alpha1.VirtualMachineProfile) ([]client.Object, error) {
	network := &profile.Spec.Networks[0]
	nad, err := desired.NAD(profile, desired.Attachment{
		Network: network, Type: vmv1alpha1.NetworkTypeBridge, Bridge: desired.BridgeName(network), VLAN: *network.VLANID,
		NAD: types.NamespacedName{Namespace: profile.Namespace, Name: desired.NADName(profile.Name, network.Name)},
	})
	if err != nil {
		return nil, err
	}
	disk := &profile.Spec.Disks[0]
	pvc := desired.PVC(profile, disk, resource.MustParse(disk.Size))
	vm, err := desired.VM(profile, desired.Placement{}, nil)
	if err != nil {
		return nil, err
	}
	children := []client.Object{nad, pvc, vm}
	for _, child := range children {
		child.SetOwnerReferences(nil)
	}
	return children, nil
}

// ForEach runs do for 0..n-1 on workers goroutines and returns how long
// it took and the first errors (at most 10).
func ForEach(ctx context.Context, n, workers int, do func(ctx context.Context, i int) error) (time.Duration, error) {
	start := time.Now()
	next := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := do(ctx, i); err != nil {
					mu.Lock()
					if len(errs) < 10 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// CreateNamespace creates a namespace for a run.
func CreateNamespace(ctx context.Context, c client.Client, name string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		return fmt.Errorf("create Namespace %s: %w", name, err)
	}
	return nil
}

// DeleteNamespace deletes a namespace and waits until the namespace
// controller has removed it and everything in it.
func DeleteNamespace(ctx context.Context, c client.Client, name string, timeout time.Duration) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := client.IgnoreNotFound(c.Delete(ctx, ns)); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(ns), ns)
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("get Namespace %s: %w", name, err)
		}
		if err != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s still there after %s", name, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
