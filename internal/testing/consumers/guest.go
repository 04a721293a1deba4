package consumers

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// ExpectedGuest is what the profile asks of the guest's network
// configuration, from the profile alone: its i-th network is the guest's
// eth<i>, matched by the MAC the VM gives that network's interface (macs,
// by network name).
func ExpectedGuest(profile *vmv1alpha1.VirtualMachineProfile, macs map[string]string) map[string]GuestInterface {
	out := map[string]GuestInterface{}
	for i, network := range profile.Spec.Networks {
		g := GuestInterface{Name: fmt.Sprintf("eth%d", i), MAC: macs[network.Name]}
		if network.MTU != nil {
			g.MTU = int(*network.MTU)
		}
		if ip := network.IPConfig; ip != nil {
			g.DHCP = ip.Mode == vmv1alpha1.IPModeDHCP
			if ip.Mode == vmv1alpha1.IPModeStatic && ip.Address != nil {
				g.Addresses = []string{*ip.Address}
			}
			if ip.Gateway != nil {
				g.Gateways = []string{string(*ip.Gateway)}
			}
			for _, dns := range ip.DNSServers {
				g.DNS = append(g.DNS, string(dns))
			}
		}
		out[g.Name] = normalized(g)
	}
	return out
}

// InterfaceMACs are the MACs a VM gives its interfaces, by network name:
// what the guest's NICs are matched by.
func InterfaceMACs(vm *kubevirtv1.VirtualMachine) map[string]string {
	macs := map[string]string{}
	if vm.Spec.Template == nil {
		return macs
	}
	for _, iface := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		macs[iface.Name] = iface.MacAddress
	}
	return macs
}

// CheckNetworkData renders networkData for every guest family and compares
// each NIC with expected. The error names the family, the NIC and both sides.
func CheckNetworkData(networkData string, expected map[string]GuestInterface) error {
	var errs []error
	for _, guest := range Guests {
		rendered, err := Render(networkData, guest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var wantGlobal []string
		for _, name := range slices.Sorted(maps.Keys(expected)) {
			want := expected[name]
			wantGlobal = append(wantGlobal, want.DNS...)
			got, ok := rendered.Interfaces[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: cloud-init rendered no %s (rendered: %v)", guest.Name, name, slices.Sorted(maps.Keys(rendered.Interfaces))))
				continue
			}
			// A server the renderer moved to the guest-wide resolv.conf is
			// still configured; one it dropped, or invented, is not.
			if got.DNS == nil && want.DNS != nil && containsAll(rendered.GlobalDNS, want.DNS) {
				got.DNS = want.DNS
			}
			if got.String() != want.String() {
				errs = append(errs, fmt.Errorf("%s: %s rendered as\n  %v\nwant\n  %v", guest.Name, name, got, want))
			}
		}
		if !containsAll(wantGlobal, rendered.GlobalDNS) {
			errs = append(errs, fmt.Errorf("%s: resolv.conf names %v, the profile only %v", guest.Name, rendered.GlobalDNS, wantGlobal))
		}
		for name := range rendered.Interfaces {
			if _, ok := expected[name]; !ok {
				errs = append(errs, fmt.Errorf("%s: cloud-init rendered %s, which the profile does not have", guest.Name, name))
			}
		}
	}
	return errors.Join(errs...)
}

// GuestAddresses are the addresses a guest configures on each MAC, as
// cloud-init renders the network-data for a Debian guest, without prefix
// length: what the simulator reports in the VMI status, instead of
// re-reading our YAML.
func GuestAddresses(networkData string) (map[string][]string, error) {
	rendered, err := Render(networkData, Guests[0])
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, g := range rendered.Interfaces {
		for _, cidr := range g.Addresses {
			ip, _, _ := strings.Cut(cidr, "/")
			out[g.MAC] = append(out[g.MAC], ip)
		}
	}
	return out, nil
}

func containsAll(set, items []string) bool {
	for _, item := range items {
		if !slices.Contains(set, item) {
			return false
		}
	}
	return true
}
