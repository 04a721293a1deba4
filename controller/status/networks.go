package status

import (
	"net/netip"

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
	for _, a := range attachments {
		hostNetworks[a.Network.Name] = a.HostNetworkName()
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
				status.IPAddress, status.IPSource = withPrefix(iface.IP, static), vmv1alpha1.IPSourceGuest
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

// withPrefix adds the configured prefix length to an address the guest
// reported without one, when it is the configured address.
func withPrefix(reported, static string) string {
	prefix, err := netip.ParsePrefix(static)
	if err != nil {
		return reported
	}
	addr, err := netip.ParseAddr(reported)
	if err != nil || addr != prefix.Addr() {
		return reported
	}
	return static
}
