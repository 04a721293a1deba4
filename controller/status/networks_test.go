package status

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// TestNetworksGivesDHCPAddressesTheirPrefix: KubeVirt reports a guest's
// address without its prefix; status takes it from the declaring
// HostNetwork's subnet on the attachment's VLAN, and leaves the address
// bare when no subnet holds it.
func TestNetworksGivesDHCPAddressesTheirPrefix(t *testing.T) {
	dhcp := &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}
	profile := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	profile.Spec.Networks = []vmv1alpha1.NetworkConfig{
		{Name: "mgmt", Type: vmv1alpha1.NetworkTypeBridge, VLANID: ptr.To[int32](100), IPConfig: dhcp},
		{Name: "biz", Type: vmv1alpha1.NetworkTypeBridge, VLANID: ptr.To[int32](200), IPConfig: dhcp},
		{Name: "ext", Type: vmv1alpha1.NetworkTypeBridge, IPConfig: dhcp},
		{Name: "raw", Type: vmv1alpha1.NetworkTypeBridge, IPConfig: dhcp},
	}
	lan := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: vmv1alpha1.HostNetworkSpec{Subnets: []vmv1alpha1.Subnet{
		{CIDR: "192.168.100.0/24", VLANID: ptr.To[int32](100)},
		{CIDR: "192.168.100.0/25", VLANID: ptr.To[int32](300)}, // another VLAN's: not this one
		{CIDR: "10.20.0.0/16"},                                 // every VLAN's
	}}}
	attachments := []desired.Attachment{
		{Network: &profile.Spec.Networks[0], Declared: lan, VLAN: 100},
		{Network: &profile.Spec.Networks[1], Declared: lan, VLAN: 200},
		{Network: &profile.Spec.Networks[2], Declared: lan},
		{Network: &profile.Spec.Networks[3]},
	}
	running := vmi(kubevirtv1.Running, "n")
	running.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "mgmt", IP: "192.168.100.10"},
		{Name: "biz", IP: "10.20.3.4"},
		{Name: "ext", IP: "172.16.0.9"},
		{Name: "raw", IP: "fd00::5/64"},
	}
	got := Networks(profile, running, attachments)
	want := []string{"192.168.100.10/24", "10.20.3.4/16", "172.16.0.9", "fd00::5/64"}
	for i, w := range want {
		if got[i].IPAddress != w || got[i].IPSource != vmv1alpha1.IPSourceGuest {
			t.Errorf("%s: %q (%s), want %q", got[i].Name, got[i].IPAddress, got[i].IPSource, w)
		}
	}
	if all := Addresses(got); all != "192.168.100.10/24,10.20.3.4/16,172.16.0.9,fd00::5/64" {
		t.Errorf("Addresses: %q", all)
	}
	if none := Addresses([]vmv1alpha1.NetworkStatus{{Name: "a"}}); none != "" {
		t.Errorf("Addresses without any: %q", none)
	}
}
