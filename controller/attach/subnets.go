package attach

import (
	"fmt"
	"net/netip"
	"strings"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// addressAllowed applies a HostNetwork's subnets on a VLAN (0: untagged)
// to a network's static address: with subnets declared there, the address
// must lie in one, and be neither its gateway nor reserved. field names
// the profile field, for the message. No subnets on the VLAN, no static
// address or no declaring HostNetwork: nil.
func addressAllowed(network *vmv1alpha1.NetworkConfig, field string, h *vmv1alpha1.HostNetwork, vlan int32) *Refusal {
	if h == nil || network.IPConfig == nil || network.IPConfig.Mode != vmv1alpha1.IPModeStatic || network.IPConfig.Address == nil {
		return nil
	}
	prefix, err := netip.ParsePrefix(*network.IPConfig.Address)
	if err != nil {
		return nil // admission refuses these
	}
	subnets := subnetsOn(h.Spec.Subnets, vlan)
	if len(subnets) == 0 {
		return nil
	}
	why := addressProblem(prefix.Addr(), subnets)
	if why == "" {
		return nil
	}
	return refuse(network, vmv1alpha1.ReasonStaticIPNotAllowed, "%s: static address %s %s on HostNetwork %s", field, prefix.Addr(), why, h.Name)
}

// subnetsOn are the subnets that apply on a VLAN: its own, and those of every VLAN.
func subnetsOn(all []vmv1alpha1.Subnet, vlan int32) []vmv1alpha1.Subnet {
	var out []vmv1alpha1.Subnet
	for _, subnet := range all {
		if subnet.VLANID == nil || *subnet.VLANID == vlan {
			out = append(out, subnet)
		}
	}
	return out
}

// addressProblem says why an address may not be taken in these subnets, or "".
func addressProblem(addr netip.Addr, subnets []vmv1alpha1.Subnet) string {
	var cidrs []string
	for i := range subnets {
		subnet := &subnets[i]
		cidrs = append(cidrs, subnet.CIDR)
		within, err := netip.ParsePrefix(subnet.CIDR)
		if err != nil || !within.Contains(addr) {
			continue
		}
		if subnet.Gateway != nil && inRange(addr, string(*subnet.Gateway)) {
			return fmt.Sprintf("is the gateway of subnet %s", subnet.CIDR)
		}
		for _, reserved := range subnet.Reserved {
			if inRange(addr, string(reserved)) {
				return fmt.Sprintf("is reserved in subnet %s (%s)", subnet.CIDR, reserved)
			}
		}
		return ""
	}
	return fmt.Sprintf("is outside the declared subnets (%s)", strings.Join(cidrs, ", "))
}

// inRange says whether addr is the address, in the CIDR, or in the
// inclusive range first-last that r writes. One that does not parse
// (admission refuses it) holds nothing.
func inRange(addr netip.Addr, r string) bool {
	if one, err := netip.ParseAddr(r); err == nil {
		return one == addr
	}
	if prefix, err := netip.ParsePrefix(r); err == nil {
		return prefix.Contains(addr)
	}
	first, last, ok := strings.Cut(r, "-")
	if !ok {
		return false
	}
	from, err1 := netip.ParseAddr(strings.TrimSpace(first))
	to, err2 := netip.ParseAddr(strings.TrimSpace(last))
	if err1 != nil || err2 != nil || from.BitLen() != addr.BitLen() || to.BitLen() != addr.BitLen() {
		return false
	}
	return from.Compare(addr) <= 0 && addr.Compare(to) <= 0
}
