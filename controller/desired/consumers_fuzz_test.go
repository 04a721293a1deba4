//go:build integration

package desired

import (
	"fmt"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
)

// fuzzBytes hands out a fuzz input byte by byte, zeros once it runs out.
type fuzzBytes []byte

func (b *fuzzBytes) next() byte {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

func (b *fuzzBytes) pick(n int) int { return int(b.next()) % n }

// fuzzProfile turns fuzz bytes into a profile the CRD admits: 1 to 4
// networks of any type, each with no IP config, DHCP, or a static IPv4 or
// IPv6 address with an optional gateway inside its subnet and DNS servers
// (at most three in all), an optional MTU and an optional unicast MAC.
func fuzzProfile(raw []byte) *vmv1alpha1.VirtualMachineProfile {
	b := fuzzBytes(raw)
	p := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "fuzz", Namespace: "ns", UID: "f"},
		Spec:       vmv1alpha1.VirtualMachineProfileSpec{CPU: int32(1 + b.pick(8)), Memory: fmt.Sprintf("%dGi", 1+b.pick(64))},
	}
	dnsServers := 0
	types := []vmv1alpha1.NetworkType{vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeMacvlan, vmv1alpha1.NetworkTypeOVS, vmv1alpha1.NetworkTypeSRIOV}
	for i := range 1 + b.pick(4) {
		n := vmv1alpha1.NetworkConfig{Name: fmt.Sprintf("net%d", i), Type: types[b.pick(len(types))], BridgeName: "br0"}
		if b.pick(2) == 1 {
			n.MTU = ptr.To(int32(68 + int(b.next())<<6%(9000-68)))
		}
		if b.pick(4) == 0 {
			n.MACAddress = fmt.Sprintf("02:00:00:%02x:%02x:%02x", b.next(), b.next(), i)
		}
		switch b.pick(3) {
		case 1:
			n.IPConfig = &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeDHCP}
		case 2:
			n.IPConfig = fuzzStatic(&b)
		}
		if n.IPConfig != nil {
			// At most 3 name servers in all: a glibc guest uses no more
			// (resolv.conf(5)), and cloud-init drops the rest of a DHCP
			// network's on RHEL-family guests
			// (TestMoreThanThreeNameServersAreCutByTheGuest; this fuzz target
			// found it).
			for range min(b.pick(4), 3-dnsServers) {
				n.IPConfig.DNSServers = append(n.IPConfig.DNSServers, vmv1alpha1.IPAddress(fmt.Sprintf("10.%d.%d.53", b.next(), b.next())))
				dnsServers++
			}
		}
		p.Spec.Networks = append(p.Spec.Networks, n)
	}
	return p
}

// fuzzStatic is a static address, IPv4 (global unicast: first octet 1–223,
// not 127) or IPv6 (2001:db8::/32), with a gateway in its subnet or none.
func fuzzStatic(b *fuzzBytes) *vmv1alpha1.IPConfigSpec {
	var prefix netip.Prefix
	if b.pick(2) == 0 {
		first := 1 + b.pick(223)
		if first == 127 {
			first = 128
		}
		addr := netip.AddrFrom4([4]byte{byte(first), b.next(), b.next(), b.next()})
		prefix = netip.PrefixFrom(addr, 8+b.pick(23)) // /8–/30: room for a gateway
	} else {
		var a [16]byte
		a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
		for i := 4; i < 16; i++ {
			a[i] = b.next()
		}
		prefix = netip.PrefixFrom(netip.AddrFrom16(a), 48+b.pick(79)) // /48–/126
	}
	network := prefix.Masked().Addr()
	host := prefix.Addr()
	if host == network { // the subnet's own address is no host
		host = host.Next()
	}
	ip := &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To(netip.PrefixFrom(host, prefix.Bits()).String())}
	if b.pick(2) == 1 {
		gateway := network.Next()
		if gateway == host {
			gateway = gateway.Next()
		}
		ip.Gateway = ptr.To(vmv1alpha1.IPAddress(gateway.String()))
	}
	return ip
}

// FuzzBuiltObjectsPassTheConsumers: for any profile the CRD admits, the VM
// the builder makes is admitted by KubeVirt, and its network-data renders in
// cloud-init exactly as the profile asks, for both guest families. make
// test fuzzes it for 30 s; make fuzz for 10 minutes.
func FuzzBuiltObjectsPassTheConsumers(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 3, 0, 1, 200, 0, 2, 0, 10, 1, 2, 3, 0, 1, 1, 1, 2})
	f.Add([]byte{7, 9, 2, 1, 1, 120, 1, 2, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 60, 1, 3, 1, 2, 3, 4, 5, 6})
	kubevirt := startKubeVirtAdmitter(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := fuzzProfile(raw)
		vm, err := VM(p, Placement{}, nil)
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		verdicts, err := kubevirt.Admit([]kubevirtv1.VirtualMachine{*vm})
		if err != nil {
			t.Fatal(err)
		}
		if err := consumers.RefusedVMs(verdicts); err != nil {
			t.Errorf("%v\nprofile networks: %+v", err, p.Spec.Networks)
		}
		data, err := NetworkData(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := consumers.CheckNetworkData(data, consumers.ExpectedGuest(p, consumers.InterfaceMACs(vm))); err != nil {
			t.Errorf("%v\nnetwork-data:\n%s", err, data)
		}
	})
}
