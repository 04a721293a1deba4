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
	cases := []struct {
		name    string
		network vmv1alpha1.NetworkConfig
		want    string
	}{
		{"bridge with vlan and mtu", vmv1alpha1.NetworkConfig{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt", VLANID: ptr.To[int32](100), MTU: ptr.To[int32](9000)},
			`{"cniVersion":"0.3.1","name":"nad","type":"bridge","bridge":"br-mgmt","vlan":100,"mtu":9000,"ipam":{}}`},
		{"bridge defaults its name from the network", vmv1alpha1.NetworkConfig{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge},
			`{"cniVersion":"0.3.1","name":"nad","type":"bridge","bridge":"br-mgmt","ipam":{}}`},
		{"macvlan on an uplink's VLAN sub-interface", vmv1alpha1.NetworkConfig{Name: "storage", Type: vmv1alpha1.NetworkTypeMacvlan, Uplink: "eth2", VLANID: ptr.To[int32](310)},
			`{"cniVersion":"0.3.1","name":"nad","type":"macvlan","master":"eth2.310","mode":"bridge","ipam":{}}`},
		{"macvlan on the uplink itself", vmv1alpha1.NetworkConfig{Name: "storage", Type: vmv1alpha1.NetworkTypeMacvlan, Uplink: "eth2"},
			`{"cniVersion":"0.3.1","name":"nad","type":"macvlan","master":"eth2","mode":"bridge","ipam":{}}`},
		{"macvlan on the default route's interface", vmv1alpha1.NetworkConfig{Name: "storage", Type: vmv1alpha1.NetworkTypeMacvlan},
			`{"cniVersion":"0.3.1","name":"nad","type":"macvlan","mode":"bridge","ipam":{}}`},
		{"sriov with vlan", vmv1alpha1.NetworkConfig{Name: "fast", Type: vmv1alpha1.NetworkTypeSRIOV, VLANID: ptr.To[int32](200)},
			`{"cniVersion":"0.3.1","name":"nad","type":"sriov","vlan":200,"ipam":{}}`},
		{"ovs with vlan", vmv1alpha1.NetworkConfig{Name: "overlay", Type: vmv1alpha1.NetworkTypeOVS, BridgeName: "br-int", VLANID: ptr.To[int32](42)},
			`{"cniVersion":"0.3.1","name":"nad","type":"ovs","bridge":"br-int","vlan":42}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CNIConfig("nad", &c.network)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	if _, err := CNIConfig("nad", &vmv1alpha1.NetworkConfig{Name: "x", Type: "vxlan"}); err == nil {
		t.Fatal("an unknown type must be an error")
	}
}

func TestNADOfSRIOVNetworkNamesItsResource(t *testing.T) {
	p := seedProfile()
	nad, err := NAD(p, &p.Spec.Networks[1], "intel.com/sriov_netdevice")
	if err != nil {
		t.Fatal(err)
	}
	if nad.Name != "web-vm-01-business" || nad.Annotations[AnnotationResourceName] != "intel.com/sriov_netdevice" {
		t.Fatalf("%s %v", nad.Name, nad.Annotations)
	}
	p.Spec.Networks[1].SRIOV = &vmv1alpha1.SRIOVConfig{ResourceName: "mellanox.com/cx5"}
	nad, _ = NAD(p, &p.Spec.Networks[1], "intel.com/sriov_netdevice")
	if nad.Annotations[AnnotationResourceName] != "mellanox.com/cx5" {
		t.Fatalf("explicit resource ignored: %v", nad.Annotations)
	}
	if ref := nad.OwnerReferences[0]; ref.Name != "web-vm-01" || !*ref.Controller {
		t.Fatalf("owner: %+v", ref)
	}
}

func TestHostNetworkFor(t *testing.T) {
	p := seedProfile()
	cases := []struct {
		name    string
		network vmv1alpha1.NetworkConfig
		want    *HostNetwork
	}{
		{"no uplink: host side must exist", vmv1alpha1.NetworkConfig{Name: "a", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br0"}, nil},
		{"bridge trunked on uplink", vmv1alpha1.NetworkConfig{Name: "a", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br0", Uplink: "bond0", VLANID: ptr.To[int32](7)},
			&HostNetwork{Interface: "br0", Type: "linux-bridge", Uplink: "bond0", VLAN: 7}},
		{"macvlan needs a VLAN sub-interface", vmv1alpha1.NetworkConfig{Name: "a", Type: vmv1alpha1.NetworkTypeMacvlan, Uplink: "eth2", VLANID: ptr.To[int32](310)},
			&HostNetwork{Interface: "eth2.310", Type: "vlan", Uplink: "eth2", VLAN: 310}},
		{"macvlan without VLAN needs nothing", vmv1alpha1.NetworkConfig{Name: "a", Type: vmv1alpha1.NetworkTypeMacvlan, Uplink: "eth2"}, nil},
		{"ovs bridge on uplink", vmv1alpha1.NetworkConfig{Name: "a", Type: vmv1alpha1.NetworkTypeOVS, BridgeName: "br-ex", Uplink: "eth3"},
			&HostNetwork{Interface: "br-ex", Type: "ovs-bridge", Uplink: "eth3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := HostNetworkFor(p, &c.network)
			if (c.want == nil) != !ok {
				t.Fatalf("needs host network: %v, want %v", ok, c.want != nil)
			}
			if c.want == nil {
				return
			}
			if got.Interface != c.want.Interface || got.Type != c.want.Type || got.Uplink != c.want.Uplink || got.VLAN != c.want.VLAN ||
				got.NodeSelector["kubernetes.io/arch"] != "amd64" {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestMergeSharedHostNetworks(t *testing.T) {
	a := HostNetwork{Interface: "br0", Type: "linux-bridge", Uplink: "bond0", VLAN: 200, MTU: 1500,
		NodeSelector: map[string]string{"rack": "r1", "kubernetes.io/arch": "amd64"}}
	b := HostNetwork{Interface: "br0", Type: "linux-bridge", Uplink: "bond0", VLAN: 100, MTU: 9000,
		NodeSelector: map[string]string{"kubernetes.io/arch": "amd64"}}
	merged, vlans, err := Merge([]HostNetwork{a, b, a})
	if err != nil {
		t.Fatal(err)
	}
	if len(vlans) != 2 || vlans[0] != 100 || vlans[1] != 200 || merged.MTU != 9000 {
		t.Fatalf("vlans %v mtu %d", vlans, merged.MTU)
	}
	if len(merged.NodeSelector) != 1 || merged.NodeSelector["kubernetes.io/arch"] != "amd64" {
		t.Fatalf("node selector should be the labels common to all users: %v", merged.NodeSelector)
	}
	golden(t, "nncp-shared-bridge", NNCP(merged, DesiredState(merged, vlans)))
	golden(t, "nncp-absent", AbsentState(merged))
	other := b
	other.Uplink = "eth1"
	if _, _, err := Merge([]HostNetwork{a, other}); err == nil || !strings.Contains(err.Error(), "eth1") {
		t.Fatalf("users on different uplinks must conflict, got %v", err)
	}
}

func TestNNCPNames(t *testing.T) {
	if got := NNCPName("br-mgmt"); got != "vmop-br-mgmt" {
		t.Fatal(got)
	}
	// Characters object names cannot hold get a hash, so br_A and br-a stay apart.
	if NNCPName("br_A") == NNCPName("br-a") || !strings.HasPrefix(NNCPName("eth1.100"), "vmop-eth1-100-") {
		t.Fatalf("%s %s %s", NNCPName("br_A"), NNCPName("br-a"), NNCPName("eth1.100"))
	}
	if got := VLANInterfaceName("enp175s0f1np1", 4000); len(got) > 15 || !strings.HasSuffix(got, ".4000") {
		t.Fatalf("VLAN interface name %q", got)
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
	if !strings.Contains(data, "to: ::/0") || !strings.Contains(data, "via: 2001:db8::1") || !strings.Contains(data, "2001:db8::10/64") {
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
	if len(retained.OwnerReferences) != 0 || retained.Labels[LabelRetainPolicy] != "Retain" {
		t.Fatalf("a Retain disk must have no owner: %v %v", retained.OwnerReferences, retained.Labels)
	}
	p.Spec.Disks[1].RetainPolicy = vmv1alpha1.RetainPolicyDelete
	deleted := PVC(p, &p.Spec.Disks[1], resource.MustParse("500Gi"))
	ref := metav1.GetControllerOf(deleted)
	if ref == nil || ref.UID != p.UID || !*ref.BlockOwnerDeletion || deleted.Labels[LabelRetainPolicy] != "Delete" {
		t.Fatalf("a Delete disk must be owned by its profile: %v %v", deleted.OwnerReferences, deleted.Labels)
	}
	if deleted.Annotations[AnnotationProfileUID] != string(p.UID) {
		t.Fatalf("profile UID annotation: %v", deleted.Annotations)
	}
}

func TestKeptRunStrategy(t *testing.T) {
	halted := kubevirtv1.RunStrategyHalted
	always := kubevirtv1.RunStrategyAlways
	vm := func(annotation string, strategy *kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachine {
		return &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationRunStrategy: annotation}},
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
			if built.Annotations[AnnotationRunStrategy] != string(c.profile) {
				t.Fatalf("the VM must record the profile's strategy: %v", built.Annotations)
			}
		})
	}
}
