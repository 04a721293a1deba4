package attach

import (
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// subnetted is the seed's mgmt network with a declared subnet: gateway .1,
// .1-.9 and .200/29 reserved; and a v6 subnet with a reserved range.
func subnetted() []vmv1alpha1.HostNetwork {
	return []vmv1alpha1.HostNetwork{hn("mgmt", 1, vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mgmt",
		Subnets: []vmv1alpha1.Subnet{
			{CIDR: "192.168.100.0/24", Gateway: ptr.To[vmv1alpha1.IPAddress]("192.168.100.1"),
				Reserved: []vmv1alpha1.AddressRange{"192.168.100.1-192.168.100.9", "192.168.100.200/29", "192.168.100.250"}},
			{CIDR: "2001:db8::/64", Gateway: ptr.To[vmv1alpha1.IPAddress]("2001:db8::1"), Reserved: []vmv1alpha1.AddressRange{"2001:db8::100-2001:db8::1ff"}},
		}})}
}

func staticOn(address string) vmv1alpha1.NetworkConfig {
	return vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: &address}}
}

// TestStaticAddressesObeySubnets: with subnets declared, a static address
// is refused outside them, on a gateway and in a reserved address, range
// or CIDR, naming the profile field; the seed's 192.168.100.10 passes.
func TestStaticAddressesObeySubnets(t *testing.T) {
	cases := []struct {
		address, want string
	}{
		{"192.168.100.10/24", ""},
		{"192.168.100.199/24", ""},
		{"192.168.100.208/24", ""},
		{"2001:db8::10/64", ""},
		{"2001:db8::200/64", ""},
		{"192.168.100.1/24", "static address 192.168.100.1 is the gateway of subnet 192.168.100.0/24 on HostNetwork mgmt"},
		{"2001:db8::1/64", "is the gateway of subnet 2001:db8::/64"},
		{"192.168.100.5/24", "is reserved in subnet 192.168.100.0/24 (192.168.100.1-192.168.100.9)"},
		{"192.168.100.9/24", "(192.168.100.1-192.168.100.9)"},
		{"192.168.100.207/24", "(192.168.100.200/29)"},
		{"192.168.100.250/24", "(192.168.100.250)"},
		{"2001:db8::1ff/64", "(2001:db8::100-2001:db8::1ff)"},
		{"192.168.101.10/24", "static address 192.168.101.10 is outside the declared subnets (192.168.100.0/24, 2001:db8::/64)"},
		{"10.0.0.5/8", "is outside the declared subnets"},
	}
	for _, c := range cases {
		t.Run(c.address, func(t *testing.T) {
			_, refusal := Resolve(profileWith("tenant-a", staticOn(c.address)), Inputs{HostNetworks: subnetted()})
			if c.want == "" {
				if refusal != nil {
					t.Fatalf("refused: %+v", refusal)
				}
				return
			}
			if refusal == nil || refusal.Reason != vmv1alpha1.ReasonStaticIPNotAllowed || !strings.Contains(refusal.Message, c.want) ||
				!strings.HasPrefix(refusal.Message, "network mgmt: spec.networks[0].ipConfig.address: ") {
				t.Fatalf("got %+v, want %s containing %q", refusal, vmv1alpha1.ReasonStaticIPNotAllowed, c.want)
			}
		})
	}
}

// TestSubnetsOnlyWhenDeclared: without subnets any address goes, DHCP is
// never checked, and a named attachment onto the declared bridge obeys the
// subnets exactly like a generated one.
func TestSubnetsOnlyWhenDeclared(t *testing.T) {
	if _, refusal := Resolve(profileWith("tenant-a", staticOn("192.168.100.1/24")), Inputs{HostNetworks: []vmv1alpha1.HostNetwork{
		hn("mgmt", 1, vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mgmt"})}}); refusal != nil {
		t.Fatalf("no subnets declared, yet refused: %+v", refusal)
	}
	dhcp := vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}}
	if _, refusal := Resolve(profileWith("tenant-a", dhcp), Inputs{HostNetworks: subnetted()}); refusal != nil {
		t.Fatalf("dhcp refused: %+v", refusal)
	}
	named := staticOn("192.168.100.1/24")
	named.NADName = "mgmt-net"
	key := types.NamespacedName{Namespace: "tenant-a", Name: "mgmt-net"}
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-mgmt"}`}}
	_, refusal := Resolve(profileWith("tenant-a", named), Inputs{HostNetworks: subnetted(), NADs: map[types.NamespacedName]*nadv1.NetworkAttachmentDefinition{key: nad}})
	if refusal == nil || refusal.Reason != vmv1alpha1.ReasonStaticIPNotAllowed || !strings.Contains(refusal.Message, "is the gateway") {
		t.Fatalf("named attachment on the gateway: %+v", refusal)
	}
}

// TestSubnetsPerVLAN: a subnet with a vlanId applies on that VLAN only; a
// VLAN without subnets of its own takes any address, and a subnet without
// vlanId applies everywhere.
func TestSubnetsPerVLAN(t *testing.T) {
	networks := []vmv1alpha1.HostNetwork{hn("transit", 1, vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mgmt",
		AllowedVLANs: []vmv1alpha1.VLANRange{"300-309"},
		Subnets: []vmv1alpha1.Subnet{
			{VLANID: ptr.To[int32](300), CIDR: "172.16.30.0/24", Gateway: ptr.To[vmv1alpha1.IPAddress]("172.16.30.1")},
			{VLANID: ptr.To[int32](301), CIDR: "172.16.31.0/24"},
		}})}
	on := func(vlan int32, address string) *Refusal {
		network := staticOn(address)
		network.VLANID = &vlan
		_, refusal := Resolve(profileWith("tenant-a", network), Inputs{HostNetworks: networks})
		return refusal
	}
	for _, c := range []struct {
		vlan    int32
		address string
		refused bool
	}{
		{300, "172.16.30.2/24", false},
		{300, "172.16.30.1/24", true},
		{300, "172.16.31.2/24", true}, // VLAN 301's subnet, not 300's
		{301, "172.16.31.2/24", false},
		{301, "172.16.30.2/24", true},
		{302, "10.9.9.9/24", false}, // no subnet declared for VLAN 302
	} {
		refusal := on(c.vlan, c.address)
		if (refusal != nil) != c.refused || (refusal != nil && refusal.Reason != vmv1alpha1.ReasonStaticIPNotAllowed) {
			t.Fatalf("VLAN %d %s: %+v, want refused %v", c.vlan, c.address, refusal, c.refused)
		}
	}
}
