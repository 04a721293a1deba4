package desired

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// networkDataProfiles cover every shape of guest network the API allows:
// IPv4 and IPv6 static with gateway and DNS, DHCP, MTU, and a network left
// to the guest.
func networkDataProfiles() []*vmv1alpha1.VirtualMachineProfile {
	ipv6 := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "v6", Namespace: "ns", UID: "6"},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi"}}
	ipv6.Spec.Networks = []vmv1alpha1.NetworkConfig{
		{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge, MTU: ptr.To[int32](9000),
			IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("2001:db8::10/64"),
				Gateway: ptr.To(vmv1alpha1.IPAddress("2001:db8::1")), DNSServers: []vmv1alpha1.IPAddress{"2001:db8::53"}}},
		{Name: "v4", Type: vmv1alpha1.NetworkTypeMacvlan,
			IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("10.1.2.3/16")}},
		{Name: "bare", Type: vmv1alpha1.NetworkTypeBridge},
		{Name: "dhcp", Type: vmv1alpha1.NetworkTypeOVS, IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP,
			DNSServers: []vmv1alpha1.IPAddress{"1.1.1.1"}}},
	}
	return []*vmv1alpha1.VirtualMachineProfile{seedProfile(), ipv6}
}
