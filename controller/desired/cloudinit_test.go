package desired

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// largestNetwork is a network whose network data is as long as the CRD
// lets one be: a static IPv6 address of the longest form (49 characters
// with the prefix), a gateway of 45, three DNS servers of 45 each and an MTU.
func largestNetwork(i int) vmv1alpha1.NetworkConfig {
	long := func(last int) vmv1alpha1.IPAddress {
		return vmv1alpha1.IPAddress(fmt.Sprintf("2001:0db8:1111:2222:3333:4444:255.255.255.%d", last))
	}
	return vmv1alpha1.NetworkConfig{
		Name: fmt.Sprintf("network-%02d", i), Type: vmv1alpha1.NetworkTypeBridge, MTU: ptr.To[int32](65535),
		IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic,
			Address:    ptr.To("2001:0db8:1111:2222:3333:4444:255.255.255.100/128"),
			Gateway:    ptr.To(long(101)),
			DNSServers: []vmv1alpha1.IPAddress{long(102), long(103), long(104)}},
	}
}

// profileWithLargestNetworks has n networks of largestNetwork, under the
// longest profile name a VM name allows.
func profileWithLargestNetworks(n int) *vmv1alpha1.VirtualMachineProfile {
	p := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("p", 60), Namespace: "ns", UID: "largest"},
		Spec:       vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", OSImage: "registry.local/cirros:0.6"},
	}
	for i := 0; i < n; i++ {
		p.Spec.Networks = append(p.Spec.Networks, largestNetwork(i))
	}
	return p
}

// cloudInitSourceOf is the VM's cloud-init volume source.
func cloudInitSourceOf(t *testing.T, vm *kubevirtv1.VirtualMachine) *kubevirtv1.CloudInitNoCloudSource {
	t.Helper()
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.Name == CloudInitVolume {
			return v.CloudInitNoCloud
		}
	}
	t.Fatalf("VM %s has no %s volume", vm.Name, CloudInitVolume)
	return nil
}

// TestLargestProfileCloudInit measures the network data of the largest
// networks the CRD admits: how many always fit inline, and that the
// largest profile (16 such networks) does not, so the Secret stays for it.
func TestLargestProfileCloudInit(t *testing.T) {
	fitting := 0
	for n := 1; n <= 16; n++ {
		data, err := NetworkData(profileWithLargestNetworks(n))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) <= MaxInlineCloudInitBytes {
			fitting = n
		}
		if n == 16 {
			t.Logf("network data: %d bytes for 16 largest networks; up to %d always fit inline in %d bytes", len(data), fitting, MaxInlineCloudInitBytes)
		}
	}
	if fitting == 0 || fitting >= 16 {
		t.Fatalf("expected some but not all of 16 largest networks to fit inline, %d do", fitting)
	}
	user := UserData(profileWithLargestNetworks(0))
	if len(user) > MaxInlineCloudInitBytes {
		t.Fatalf("user data of the longest name is %d bytes", len(user))
	}

	inline, err := VM(profileWithLargestNetworks(fitting), Placement{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	source := cloudInitSourceOf(t, inline)
	if source.NetworkData == "" || source.UserData == "" || source.NetworkDataSecretRef != nil || source.UserDataSecretRef != nil {
		t.Errorf("%d networks fit inline, the VM refers to a Secret: %+v", fitting, source)
	}
	if _, ok := inline.Annotations[vmv1alpha1.AnnotationCloudInitHash]; ok {
		t.Error("an inline VM records a cloud-init Secret hash")
	}

	largest := profileWithLargestNetworks(fitting + 1)
	vm, err := VM(largest, Placement{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	source = cloudInitSourceOf(t, vm)
	secret, err := CloudInitSecret(largest)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.LocalObjectReference{Name: secret.Name}
	if source.NetworkData != "" || source.UserData != "" || *source.NetworkDataSecretRef != *want || *source.UserDataSecretRef != *want {
		t.Errorf("%d networks do not fit inline, the VM's cloud-init is %+v", fitting+1, source)
	}
	if vm.Annotations[vmv1alpha1.AnnotationCloudInitHash] != CloudInitHash(secret) || CloudInitHash(secret) == "" {
		t.Errorf("VM annotation %q, Secret hash %q", vm.Annotations[vmv1alpha1.AnnotationCloudInitHash], CloudInitHash(secret))
	}
	changed := profileWithLargestNetworks(fitting + 1)
	changed.Spec.Networks[0].MTU = ptr.To[int32](1500)
	changedSecret, err := CloudInitSecret(changed)
	if err != nil {
		t.Fatal(err)
	}
	if CloudInitHash(changedSecret) == CloudInitHash(secret) {
		t.Error("a change of network data leaves the cloud-init hash unchanged")
	}
}

// TestBuiltVMsUseOnlyTheirOwnStorage: every VM the builder makes, for
// every shape of profile the tests know (container disk, imported and
// blank disks, inline and Secret cloud-init), uses only VolumeKinds; and
// the check does catch a ServiceAccount, a host disk and a foreign Secret.
func TestBuiltVMsUseOnlyTheirOwnStorage(t *testing.T) {
	profiles := append(networkDataProfiles(), profileWithLargestNetworks(1), profileWithLargestNetworks(16))
	for _, p := range profiles {
		vm, err := VM(p, Placement{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckVolumeKinds(vm); err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
	}
	for name, source := range map[string]kubevirtv1.VolumeSource{
		"serviceAccount": {ServiceAccount: &kubevirtv1.ServiceAccountVolumeSource{ServiceAccountName: "default"}},
		"hostDisk":       {HostDisk: &kubevirtv1.HostDisk{Path: "/var/x.img", Type: kubevirtv1.HostDiskExists}},
		"secret":         {Secret: &kubevirtv1.SecretVolumeSource{SecretName: "db"}},
		"foreign cloud-init Secret": {CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{
			UserDataSecretRef: &corev1.LocalObjectReference{Name: "db-password"}}},
	} {
		vm, err := VM(seedProfile(), Placement{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		vm.Spec.Template.Spec.Volumes = append(vm.Spec.Template.Spec.Volumes, kubevirtv1.Volume{Name: "extra", VolumeSource: source})
		if err := CheckVolumeKinds(vm); err == nil {
			t.Errorf("a VM with a %s volume passes the check", name)
		}
	}
}
