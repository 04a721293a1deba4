package status

import (
	"net/netip"
	"strings"

	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// Networks reports each network's guest interface, address and MAC: what
// the running VM reports when it does, else the configured static address
// (marked as such), so the table shows an address as soon as one is known.
func Networks(profile *vmv1alpha1.VirtualMachineProfile, vmi *kubevirtv1.VirtualMachineInstance, attachments []desired.Attachment) []vmv1alpha1.NetworkStatus {
	if len(profile.Spec.Networks) == 0 {
		return nil
	}
	reported := map[string]kubevirtv1.VirtualMachineInstanceNetworkInterface{}
	if vmi != nil {
		for _, iface := range vmi.Status.Interfaces {
			reported[iface.Name] = iface
		}
	}
	hostNetworks := map[string]string{}
	byNetwork := map[string]*desired.Attachment{}
	for i := range attachments {
		hostNetworks[attachments[i].Network.Name] = attachments[i].HostNetworkName()
		byNetwork[attachments[i].Network.Name] = &attachments[i]
	}
	statuses := make([]vmv1alpha1.NetworkStatus, 0, len(profile.Spec.Networks))
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		status := vmv1alpha1.NetworkStatus{
			Name:        network.Name,
			Interface:   desired.GuestInterfaceName(i),
			MACAddress:  desired.MACAddress(profile, network),
			HostNetwork: hostNetworks[network.Name],
		}
		static := staticAddress(network)
		if iface, ok := reported[network.Name]; ok {
			if iface.InterfaceName != "" {
				status.Interface = iface.InterfaceName
			}
			if iface.MAC != "" {
				status.MACAddress = iface.MAC
			}
			if iface.IP != "" {
				status.IPAddress, status.IPSource = withPrefix(iface.IP, static, byNetwork[network.Name]), vmv1alpha1.IPSourceGuest
			}
		}
		if status.IPAddress == "" && static != "" {
			status.IPAddress, status.IPSource = static, vmv1alpha1.IPSourceSpec
		}
		statuses = append(statuses, status)
	}
	return statuses
}

func staticAddress(network *vmv1alpha1.NetworkConfig) string {
	if network.IPConfig == nil || network.IPConfig.Mode != vmv1alpha1.IPModeStatic || network.IPConfig.Address == nil {
		return ""
	}
	return *network.IPConfig.Address
}

// withPrefix gives an address the guest reported its prefix length, which
// KubeVirt's interface status leaves out (the guest agent's prefix is not
// passed on): kept when the report has one, the configured one when it is
// the static address, else that of the declaring HostNetwork's subnet on the
// attachment's VLAN that holds it (a DHCP lease on a declared segment).
// Without any, the bare address: a guessed prefix would be wrong.
func withPrefix(reported, static string, attachment *desired.Attachment) string {
	if _, err := netip.ParsePrefix(reported); err == nil {
		return reported
	}
	addr, err := netip.ParseAddr(reported)
	if err != nil {
		return reported
	}
	if prefix, err := netip.ParsePrefix(static); err == nil && addr == prefix.Addr() {
		return static
	}
	if bits, ok := subnetBits(addr, attachment); ok {
		return netip.PrefixFrom(addr, bits).String()
	}
	return reported
}

// subnetBits is the prefix length of the declared subnet holding addr on
// the attachment's VLAN: a subnet without vlanId applies on every VLAN.
func subnetBits(addr netip.Addr, attachment *desired.Attachment) (int, bool) {
	if attachment == nil || attachment.Declared == nil {
		return 0, false
	}
	for _, subnet := range attachment.Declared.Spec.Subnets {
		if subnet.VLANID != nil && *subnet.VLANID != attachment.VLAN {
			continue
		}
		prefix, err := netip.ParsePrefix(subnet.CIDR)
		if err == nil && prefix.Contains(addr) {
			return prefix.Bits(), true
		}
	}
	return 0, false
}

// Addresses joins every network's address, in spec.networks order, for
// the wide table's Addresses column (a printer column shows one value).
func Addresses(networks []vmv1alpha1.NetworkStatus) string {
	var addresses []string
	for _, network := range networks {
		if network.IPAddress != "" {
			addresses = append(addresses, network.IPAddress)
		}
	}
	return strings.Join(addresses, ",")
}
