package validation

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func profileWithDisks(name, namespace string, disks ...vmv1alpha1.DiskConfig) *vmv1alpha1.VirtualMachineProfile {
	return &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       vmv1alpha1.VirtualMachineProfileSpec{CPU: 2, Memory: "4Gi", Disks: disks},
	}
}

// TestDiskUpdateRules changes a stored profile step by step; each step is
// sent as a real update and must be accepted or rejected as the transition
// rules say. Steps run in order: each starts from what the last accepted one stored.
func TestDiskUpdateRules(t *testing.T) {
	namespace := newNamespace(t)
	profile := profileWithDisks("disk-updates", namespace,
		vmv1alpha1.DiskConfig{Name: "system", Size: "20Gi", StorageClassName: "huamei-sc-ssd", Boot: true},
		vmv1alpha1.DiskConfig{Name: "data", Size: "500Gi"},
	)
	if err := create(profile); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		change      func(spec *vmv1alpha1.VirtualMachineProfileSpec)
		wantField   string // empty: the update must be accepted
		wantMessage string
	}{
		{"grow system disk", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[0].Size = "40Gi" }, "", ""},
		{"same size in other units", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[0].Size = "40960Mi" }, "", ""},
		{"shrink system disk", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[0].Size = "30Gi" },
			"spec.disks[0].size", "size may grow but never shrink"},
		{"shrink data disk", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[1].Size = "499Gi" },
			"spec.disks[1].size", "size may grow but never shrink"},
		{"change storage class", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[0].StorageClassName = "huamei-sc-hdd" },
			"spec.disks[0].storageClassName", "storageClassName cannot change once set"},
		{"remove storage class", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[0].StorageClassName = "" },
			"spec.disks[0].storageClassName", "storageClassName cannot change once set"},
		{"set storage class where unset", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[1].StorageClassName = "huamei-sc-hdd" }, "", ""},
		{"then change it", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[1].StorageClassName = "huamei-sc-ssd" },
			"spec.disks[1].storageClassName", "storageClassName cannot change once set"},
		{"add a disk", func(s *vmv1alpha1.VirtualMachineProfileSpec) {
			s.Disks = append(s.Disks, vmv1alpha1.DiskConfig{Name: "logs", Size: "1Gi", StorageClassName: "huamei-sc-hdd"})
		}, "", ""},
		{"reorder disks and grow one", func(s *vmv1alpha1.VirtualMachineProfileSpec) {
			s.Disks[0], s.Disks[2] = s.Disks[2], s.Disks[0]
			s.Disks[2].Size = "50Gi"
		}, "", ""},
		{"shrink after reorder is still caught by disk name", func(s *vmv1alpha1.VirtualMachineProfileSpec) { s.Disks[2].Size = "45Gi" },
			"spec.disks[2].size", "size may grow but never shrink"},
	}
	for _, step := range steps {
		var stored vmv1alpha1.VirtualMachineProfile
		if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(profile), &stored); err != nil {
			t.Fatal(err)
		}
		step.change(&stored.Spec)
		err := cluster.Client.Update(context.Background(), &stored)
		switch {
		case step.wantField == "" && err != nil:
			t.Errorf("%s: rejected: %v", step.name, err)
		case step.wantField != "" && err == nil:
			t.Errorf("%s: accepted; want rejection at %s", step.name, step.wantField)
		case step.wantField != "" && !errorNames(err, step.wantField, step.wantMessage):
			t.Errorf("%s: want a cause at %s saying %q, got %v", step.name, step.wantField, step.wantMessage, err)
		case err != nil:
			t.Logf("%s: %v", step.name, err)
		}
	}
}

// TestStatusIsWritableThroughItsSubresourceOnly checks the status subresource:
// a status write does not touch spec, and a spec update does not touch status.
func TestStatusIsWritableThroughItsSubresourceOnly(t *testing.T) {
	namespace := newNamespace(t)
	profile := profileWithDisks("status-writes", namespace, vmv1alpha1.DiskConfig{Name: "system", Size: "20Gi", Boot: true})
	if err := create(profile); err != nil {
		t.Fatal(err)
	}
	profile.Status = vmv1alpha1.VirtualMachineProfileStatus{
		Phase:              vmv1alpha1.PhaseRunning,
		VMName:             vmv1alpha1.VMName(profile.Name),
		NodeName:           "node-01",
		ObservedGeneration: profile.Generation,
		Networks:           []vmv1alpha1.NetworkStatus{{Name: "mgmt", Interface: "eth0", IPAddress: "192.168.100.10/24", IPSource: vmv1alpha1.IPSourceGuest, MACAddress: "02:aa:bb:cc:dd:ee"}},
		Volumes:            []vmv1alpha1.VolumeStatus{{Name: "system", PVCName: "status-writes-system", Bound: true, Phase: "Succeeded", Progress: "100.0%"}},
		Placement:          &vmv1alpha1.PlacementStatus{EligibleNodes: 1, ExcludedNodes: 1, Excluded: []vmv1alpha1.NodeExclusion{{Node: "node-02", Reason: "bridge br-mgmt is down"}}},
		Conditions: []metav1.Condition{{
			Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonVMRunning,
			Message: "VM is running", LastTransitionTime: metav1.Now(),
		}},
	}
	if err := cluster.Client.Status().Update(context.Background(), profile); err != nil {
		t.Fatalf("status update rejected: %v", err)
	}
	profile.Spec.CPU = 3
	profile.Status.Phase = vmv1alpha1.PhaseError
	if err := cluster.Client.Update(context.Background(), profile); err != nil {
		t.Fatal(err)
	}
	var stored vmv1alpha1.VirtualMachineProfile
	if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(profile), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Spec.CPU != 3 || stored.Status.Phase != vmv1alpha1.PhaseRunning || stored.Status.Placement.Excluded[0].Node != "node-02" {
		t.Fatalf("spec and status should move independently: cpu=%d phase=%s", stored.Spec.CPU, stored.Status.Phase)
	}
	if !strings.HasSuffix(stored.Status.VMName, "-vm") {
		t.Fatalf("vmName %q", stored.Status.VMName)
	}
}

// TestHostNetworkUpdateRules: what profiles attach by (type, bridge name)
// cannot change under them; everything else of a HostNetwork may.
func TestHostNetworkUpdateRules(t *testing.T) {
	ctx := context.Background()
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "update-rules"},
		Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-upd", AllowedVLANs: []vmv1alpha1.VLANRange{"100"}}}
	if err := create(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(ctx, h) })
	steps := []struct {
		name        string
		change      func(spec *vmv1alpha1.HostNetworkSpec)
		wantField   string
		wantMessage string
	}{
		{"allow more VLANs", func(s *vmv1alpha1.HostNetworkSpec) { s.AllowedVLANs = append(s.AllowedVLANs, "200-210") }, "", ""},
		{"rename the bridge", func(s *vmv1alpha1.HostNetworkSpec) { s.BridgeName = "br-other" }, "spec.bridgeName", "bridgeName cannot change"},
		{"change the type", func(s *vmv1alpha1.HostNetworkSpec) { s.Type = vmv1alpha1.NetworkTypeOVS }, "spec.type", "type cannot change"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			var stored vmv1alpha1.HostNetwork
			if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(h), &stored); err != nil {
				t.Fatal(err)
			}
			step.change(&stored.Spec)
			err := cluster.Client.Update(ctx, &stored)
			if step.wantField == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !errorNames(err, step.wantField, step.wantMessage) {
				t.Fatalf("want a cause at %s saying %q, got %v", step.wantField, step.wantMessage, err)
			}
		})
	}
}
