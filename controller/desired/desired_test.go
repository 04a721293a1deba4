package desired

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got (as YAML) with testdata/name.yaml.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	raw, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".yaml")
	if *update {
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./controller/desired -update to create it)", err)
	}
	if string(want) != string(raw) {
		t.Fatalf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, raw, want)
	}
}

// seedProfile is the request's full example, as the apiserver stores it.
func seedProfile() *vmv1alpha1.VirtualMachineProfile {
	return &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "web-vm-01", Namespace: "default", UID: types.UID("0b7c6a4e-1111-2222-3333-444455556666")},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{
			CPU: 4, Memory: "8Gi", OSImage: "registry.local/centos-stream:8", SSHKeySecret: "web-vm-ssh",
			Networks: []vmv1alpha1.NetworkConfig{
				{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, NADName: "mgmt-net", VLANID: ptr.To[int32](100), BridgeName: "br-mgmt",
					IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("192.168.100.10/24"),
						Gateway: ptr.To(vmv1alpha1.IPAddress("192.168.100.1")), DNSServers: []vmv1alpha1.IPAddress{"8.8.8.8", "8.8.4.4"}}},
				{Name: "business", Type: vmv1alpha1.NetworkTypeSRIOV, VLANID: ptr.To[int32](200),
					IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}},
			},
			Disks: []vmv1alpha1.DiskConfig{
				{Name: "system", Size: "80Gi", StorageClassName: "huamei-sc-ssd", Boot: true, Image: "registry.local/centos-stream:8"},
				{Name: "data", Size: "500Gi", StorageClassName: "huamei-sc-hdd"},
			},
			HighAvailability: &vmv1alpha1.HighAvailabilitySpec{RestartPolicy: vmv1alpha1.RestartAlways, AntiAffinity: true,
				NodeSelector: map[string]vmv1alpha1.LabelValue{"kubernetes.io/arch": "amd64"}},
			StartStrategy: &vmv1alpha1.StartStrategySpec{RunStrategy: vmv1alpha1.RunStrategyAlways, AutoStart: ptr.To(true)},
		},
	}
}

func TestCNIConfigs(t *testing.T) {
	net := &vmv1alpha1.NetworkConfig{Name: "n", Type: vmv1alpha1.NetworkTypeBridge}
	cases := []struct {
		name string
		a    Attachment
		want string
	}{
		{"bridge with vlan and mtu", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-mgmt", VLAN: 100, MTU: 9000},
			`{"cniVersion":"0.4.0","name":"nad","type":"bridge","bridge":"br-mgmt","vlan":100,"preserveDefaultVlan":false,"macspoofchk":true,"mtu":9000,"ipam":{}}`},
		{"bridge untagged", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeBridge, Bridge: "br-mgmt"},
			`{"cniVersion":"0.4.0","name":"nad","type":"bridge","bridge":"br-mgmt","macspoofchk":true,"ipam":{}}`},
		{"macvlan on a VLAN sub-interface: the VLAN is on the master", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeMacvlan, Master: "storage.310", VLAN: 310},
			`{"cniVersion":"0.4.0","name":"nad","type":"macvlan","master":"storage.310","mode":"bridge","ipam":{}}`},
		{"macvlan on the default route's interface", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeMacvlan},
			`{"cniVersion":"0.4.0","name":"nad","type":"macvlan","mode":"bridge","ipam":{}}`},
		{"sriov with vlan", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeSRIOV, VLAN: 200, ResourceName: "intel.com/x"},
			`{"cniVersion":"0.4.0","name":"nad","type":"sriov","vlan":200,"spoofchk":"on","trust":"off","ipam":{}}`},
		{"sriov untagged still checks spoofing and trusts no guest", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeSRIOV, ResourceName: "intel.com/x"},
			`{"cniVersion":"0.4.0","name":"nad","type":"sriov","spoofchk":"on","trust":"off","ipam":{}}`},
		{"ovs with vlan", Attachment{Network: net, Type: vmv1alpha1.NetworkTypeOVS, Bridge: "br-int", VLAN: 42},
			`{"cniVersion":"0.4.0","name":"nad","type":"ovs","bridge":"br-int","vlan":42}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CNIConfig("nad", c.a)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	if _, err := CNIConfig("nad", Attachment{Network: &vmv1alpha1.NetworkConfig{Name: "x", Type: "vxlan"}, Type: "vxlan"}); err == nil {
		t.Fatal("an unknown type must be an error")
	}
}

func TestNADOfSRIOVNetworkNamesItsResource(t *testing.T) {
	p := seedProfile()
	nad, err := NAD(p, Attachment{Network: &p.Spec.Networks[1], Type: vmv1alpha1.NetworkTypeSRIOV, VLAN: 200, ResourceName: "mellanox.com/cx5"})
	if err != nil {
		t.Fatal(err)
	}
	if nad.Name != "web-vm-01-business" || nad.Annotations[vmv1alpha1.AnnotationResourceName] != "mellanox.com/cx5" {
		t.Fatalf("%s %v", nad.Name, nad.Annotations)
	}
	if ref := nad.OwnerReferences[0]; ref.Name != "web-vm-01" || !*ref.Controller {
		t.Fatalf("owner: %+v", ref)
	}
}

// hostNetwork builds a HostNetwork for the builder tests.
func hostNetwork(name string, spec vmv1alpha1.HostNetworkSpec) *vmv1alpha1.HostNetwork {
	return &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("hn-" + name)}, Spec: spec}
}

func TestHostNetworkPolicies(t *testing.T) {
	bond := &vmv1alpha1.Bond{Name: "bond0", Mode: "802.3ad", Ports: []string{"ens1f0", "ens1f1"}}
	cases := []struct {
		golden string
		h      *vmv1alpha1.HostNetwork
	}{
		{"nncp-bridge-trunk", hostNetwork("mgmt", vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"100", "200-210"}, MTU: ptr.To[int32](9000),
			NodeSelector: map[string]string{"network.example.com/mgmt": "true"}})},
		{"nncp-bridge-bond", hostNetwork("data", vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-data", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Bond: bond}}})},
		{"nncp-macvlan-vlans", hostNetwork("storage", vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeMacvlan, Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth2"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"310", "311"}})},
		{"nncp-sriov", hostNetwork("fast", vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeSRIOV, Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "ens1f0"}}, SRIOV: &vmv1alpha1.HostSRIOV{NumVFs: ptr.To[int32](8), ResourceName: "intel.com/sriov"}})},
		{"nncp-ovs", hostNetwork("overlay", vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeOVS, BridgeName: "br-int", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth3"}}})},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			uplink := &c.h.Spec.Uplinks[0]
			state, err := HostNetworkState(c.h, uplink)
			if err != nil {
				t.Fatal(err)
			}
			policy := HostNetworkPolicy(c.h, uplink, state)
			if policy.Name != "vmop-"+c.h.Name || HostNetworkOf(policy) != c.h.Name || metav1.GetControllerOf(policy).UID != c.h.UID {
				t.Fatalf("policy %s labels %v owners %v", policy.Name, policy.Labels, policy.OwnerReferences)
			}
			golden(t, c.golden, policy)
			revert, err := RevertState(state)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.golden+"-revert", revert)
		})
	}
}

func TestPolicyPerUplinkGroup(t *testing.T) {
	h := hostNetwork("mgmt", vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt", Managed: true,
		NodeSelector: map[string]string{"role": "worker"},
		Uplinks: []vmv1alpha1.Uplink{
			{NodeSelector: map[string]string{"hw": "dell"}, Interface: "eno1"},
			{NodeSelector: map[string]string{"hw": "hpe"}, Interface: "ens2f0"},
		}})
	first, second := PolicyName(h, &h.Spec.Uplinks[0]), PolicyName(h, &h.Spec.Uplinks[1])
	if first == second || !strings.HasPrefix(first, "vmop-mgmt.") || !strings.HasPrefix(second, "vmop-mgmt.") {
		t.Fatalf("group policies %s %s", first, second)
	}
	reordered := h.DeepCopy()
	reordered.Spec.Uplinks[0], reordered.Spec.Uplinks[1] = reordered.Spec.Uplinks[1], reordered.Spec.Uplinks[0]
	if PolicyName(reordered, &reordered.Spec.Uplinks[1]) != first {
		t.Fatal("a group's policy name must not depend on the order of the list")
	}
	selector := PolicyNodeSelector(h, &h.Spec.Uplinks[1])
	if len(selector) != 2 || selector["role"] != "worker" || selector["hw"] != "hpe" {
		t.Fatalf("group selector %v", selector)
	}
}

func TestVLANInterfaceNames(t *testing.T) {
	if got := VLANInterfaceName("storage", 310); got != "storage.310" {
		t.Fatal(got)
	}
	long := VLANInterfaceName("storage-network-east", 4000)
	if len(long) > 15 || !strings.HasSuffix(long, ".4000") || long == VLANInterfaceName("storage-network-west", 4000) {
		t.Fatalf("shortened names must fit and stay distinct: %s %s", long, VLANInterfaceName("storage-network-west", 4000))
	}
}

func TestVolumes(t *testing.T) {
	p := seedProfile()
	golden(t, "datavolume-system", DataVolume(p, &p.Spec.Disks[0], p.Spec.DiskImage(&p.Spec.Disks[0]), resource.MustParse("80Gi")))
	golden(t, "pvc-data", PVC(p, &p.Spec.Disks[1], resource.MustParse("500Gi")))
	if RegistryURL("docker://a/b:1") != "docker://a/b:1" || RegistryURL("a/b:1") != "docker://a/b:1" || ContainerDiskImage("docker://a/b:1") != "a/b:1" {
		t.Fatal("image reference normalisation")
	}
	blank := PVC(p, &vmv1alpha1.DiskConfig{Name: "scratch", Size: "1Gi"}, resource.MustParse("1Gi"))
	if blank.Spec.StorageClassName != nil {
		t.Fatal("a disk without class must use the cluster default (nil), not an empty class")
	}
}

func TestCloudInit(t *testing.T) {
	p := seedProfile()
	secret, err := CloudInitSecret(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cloudinit-networkdata", string(secret.Data[NetworkDataKey]))
	if strings.Contains(string(secret.Data[UserDataKey]), "ssh") {
		t.Fatal("user data must not carry SSH keys")
	}
	ipv6 := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "v6", Namespace: "ns"}}
	ipv6.Spec.Networks = []vmv1alpha1.NetworkConfig{{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge,
		IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("2001:db8::10/64"), Gateway: ptr.To(vmv1alpha1.IPAddress("2001:db8::1"))}}}
	data, err := NetworkData(ipv6)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(data, "gateway6: 2001:db8::1") || !strings.Contains(data, "2001:db8::10/64") {
		t.Fatalf("IPv6 network data:\n%s", data)
	}
}

func TestVM(t *testing.T) {
	p := seedProfile()
	vm, err := VM(p, Placement{RequiredNodeLabels: map[string]string{"cap.vm.example.com/kvm": "true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "vm-seed", vm)
	raw, _ := json.Marshal(vm)
	if strings.Contains(string(raw), "ssh-") {
		t.Fatal("key material in the VM")
	}
}

func TestVMBootsFromContainerDiskWithoutDisks(t *testing.T) {
	p := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "eph", Namespace: "ns"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", OSImage: "docker://registry.local/cirros:0.6",
			StartStrategy: &vmv1alpha1.StartStrategySpec{AutoStart: ptr.To(false)}}}
	vm, err := VM(p, Placement{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	volumes := vm.Spec.Template.Spec.Volumes
	if volumes[0].ContainerDisk == nil || volumes[0].ContainerDisk.Image != "registry.local/cirros:0.6" || *vm.Spec.Template.Spec.Domain.Devices.Disks[0].BootOrder != 1 {
		t.Fatalf("container disk: %+v", volumes[0])
	}
	if string(*vm.Spec.RunStrategy) != "Halted" || vm.Spec.Template.Spec.Affinity != nil {
		t.Fatalf("run strategy %s affinity %+v", *vm.Spec.RunStrategy, vm.Spec.Template.Spec.Affinity)
	}
}

func TestMACAddressIsStableAndLocallyAdministered(t *testing.T) {
	p := seedProfile()
	first := MACAddress(p, &p.Spec.Networks[0])
	if first != MACAddress(seedProfile(), &seedProfile().Spec.Networks[0]) {
		t.Fatal("MAC not stable")
	}
	if first == MACAddress(p, &p.Spec.Networks[1]) {
		t.Fatal("two networks got one MAC")
	}
	var b0 byte
	if _, err := fmt.Sscanf(first[:2], "%02x", &b0); err != nil || b0&0x02 == 0 || b0&0x01 != 0 {
		t.Fatalf("MAC %s must be locally administered unicast", first)
	}
	p.Spec.Networks[0].MACAddress = "02:AA:00:00:00:01"
	if MACAddress(p, &p.Spec.Networks[0]) != "02:aa:00:00:00:01" {
		t.Fatal("explicit MAC not used")
	}
}

func TestVolumeOwnershipFollowsTheRetainPolicy(t *testing.T) {
	p := seedProfile()
	retained := PVC(p, &p.Spec.Disks[1], resource.MustParse("500Gi"))
	if len(retained.OwnerReferences) != 0 || retained.Labels[vmv1alpha1.LabelRetainPolicy] != "Retain" {
		t.Fatalf("a Retain disk must have no owner: %v %v", retained.OwnerReferences, retained.Labels)
	}
	p.Spec.Disks[1].RetainPolicy = vmv1alpha1.RetainPolicyDelete
	deleted := PVC(p, &p.Spec.Disks[1], resource.MustParse("500Gi"))
	ref := metav1.GetControllerOf(deleted)
	if ref == nil || ref.UID != p.UID || !*ref.BlockOwnerDeletion || deleted.Labels[vmv1alpha1.LabelRetainPolicy] != "Delete" {
		t.Fatalf("a Delete disk must be owned by its profile: %v %v", deleted.OwnerReferences, deleted.Labels)
	}
	if deleted.Annotations[vmv1alpha1.AnnotationProfileUID] != string(p.UID) {
		t.Fatalf("profile UID annotation: %v", deleted.Annotations)
	}
}

func TestKeptRunStrategy(t *testing.T) {
	halted := kubevirtv1.RunStrategyHalted
	always := kubevirtv1.RunStrategyAlways
	vm := func(annotation string, strategy *kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachine {
		return &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{vmv1alpha1.AnnotationRunStrategy: annotation}},
			Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: strategy}}
	}
	cases := []struct {
		name     string
		existing *kubevirtv1.VirtualMachine
		profile  vmv1alpha1.RunStrategy
		want     *kubevirtv1.VirtualMachineRunStrategy
	}{
		{"no VM yet", nil, vmv1alpha1.RunStrategyAlways, nil},
		{"virtctl stop is kept", vm("Always", &halted), vmv1alpha1.RunStrategyAlways, &halted},
		{"unchanged VM", vm("Always", &always), vmv1alpha1.RunStrategyAlways, &always},
		{"the profile changed its strategy: the profile wins", vm("Always", &halted), vmv1alpha1.RunStrategyRerunOnFailure, nil},
		{"VM of an earlier version (no annotation): the profile wins", vm("", &halted), vmv1alpha1.RunStrategyAlways, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := seedProfile()
			p.Spec.StartStrategy.RunStrategy = c.profile
			got := KeptRunStrategy(p, c.existing)
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Fatalf("KeptRunStrategy = %v, want %v", got, c.want)
			}
			built, err := VM(p, Placement{}, got)
			if err != nil {
				t.Fatal(err)
			}
			if built.Annotations[vmv1alpha1.AnnotationRunStrategy] != string(c.profile) {
				t.Fatalf("the VM must record the profile's strategy: %v", built.Annotations)
			}
		})
	}
}
