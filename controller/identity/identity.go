// Package identity decides which profile holds which static address and
// MAC on which segment: what a profile's spec claims, what its living VM
// instance uses, and which of two profiles claiming one value on a segment
// keeps it (Checker). It owns the field indexes these are found by: two on
// profiles (IndexStaticIP, IndexMAC) and one on VM instances (IndexLive).
package identity

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// Field indexes on profiles, so that a profile finds the others claiming
// one of its values, and a change wakes the profiles it concerns.
const (
	IndexStaticIP = "vmop.staticIP"
	IndexMAC      = "vmop.mac"
)

// IndexLive indexes VM instances by the static addresses and MACs they
// use (the guest's reported addresses, the interfaces' MACs): a value is
// held while an instance uses it, whatever its profile's spec says now (a
// revoked profile, or one edited since its VM started).
const IndexLive = "vmop.liveIdentity"

// staticAddresses are a profile's static addresses (without prefix), by network name.
func staticAddresses(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	out := map[string]string{}
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		if network.IPConfig == nil || network.IPConfig.Mode != vmv1alpha1.IPModeStatic || network.IPConfig.Address == nil {
			continue
		}
		prefix, err := netip.ParsePrefix(*network.IPConfig.Address)
		if err != nil {
			continue // admission refuses these; nothing to compare
		}
		out[network.Name] = prefix.Addr().String()
	}
	return out
}

// macAddresses are a profile's guest MACs (set or generated, lowercase), by network name.
func macAddresses(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	out := map[string]string{}
	for i := range profile.Spec.Networks {
		out[profile.Spec.Networks[i].Name] = desired.MACAddress(profile, &profile.Spec.Networks[i])
	}
	return out
}

// identity is something a network claims on its segment that no other
// profile may claim there: a static address, a MAC.
type identity struct {
	// noun names it in messages.
	noun string
	// reason is the condition reason of a clash.
	reason string
	// index is the profile field index holding its values.
	index string
	// of maps network name to the value each network claims.
	of func(*vmv1alpha1.VirtualMachineProfile) map[string]string
	// shown is the value a network's status reports in use.
	shown func(vmv1alpha1.NetworkStatus) string
	// live maps network name to the values a running instance uses.
	live func(*kubevirtv1.VirtualMachineInstance) map[string][]string
}

func staticIPIdentity() identity {
	return identity{noun: "static address", reason: vmv1alpha1.ReasonStaticIPConflict, index: IndexStaticIP, of: staticAddresses,
		shown: func(s vmv1alpha1.NetworkStatus) string {
			if prefix, err := netip.ParsePrefix(s.IPAddress); err == nil {
				return prefix.Addr().String()
			}
			return s.IPAddress
		},
		live: func(vmi *kubevirtv1.VirtualMachineInstance) map[string][]string {
			out := map[string][]string{}
			for _, iface := range vmi.Status.Interfaces {
				for _, ip := range append([]string{iface.IP}, iface.IPs...) {
					if addr, err := netip.ParseAddr(ip); err == nil {
						out[iface.Name] = append(out[iface.Name], addr.String())
					} else if prefix, err := netip.ParsePrefix(ip); err == nil {
						out[iface.Name] = append(out[iface.Name], prefix.Addr().String())
					}
				}
			}
			return out
		}}
}

func macIdentity() identity {
	return identity{noun: "MAC address", reason: vmv1alpha1.ReasonMACConflict, index: IndexMAC, of: macAddresses,
		shown: func(s vmv1alpha1.NetworkStatus) string { return strings.ToLower(s.MACAddress) },
		live: func(vmi *kubevirtv1.VirtualMachineInstance) map[string][]string {
			out := map[string][]string{}
			for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
				if iface.MacAddress != "" {
					out[iface.Name] = append(out[iface.Name], strings.ToLower(iface.MacAddress))
				}
			}
			for _, iface := range vmi.Status.Interfaces {
				if iface.MAC != "" {
					out[iface.Name] = append(out[iface.Name], strings.ToLower(iface.MAC))
				}
			}
			return out
		}}
}

func identities() []identity { return []identity{staticIPIdentity(), macIdentity()} }

// indexKeys are the index values of an identity: the value alone. Which
// segment each is on depends on how the network resolves, so candidates
// found by value are resolved and compared.
func indexKeys(id identity) func(*vmv1alpha1.VirtualMachineProfile) []string {
	return func(profile *vmv1alpha1.VirtualMachineProfile) []string {
		var keys []string
		for _, value := range id.of(profile) {
			if !slices.Contains(keys, value) {
				keys = append(keys, value)
			}
		}
		return keys
	}
}

// StaticIPKeys are a profile's values in IndexStaticIP.
func StaticIPKeys(profile *vmv1alpha1.VirtualMachineProfile) []string {
	return indexKeys(staticIPIdentity())(profile)
}

// MACKeys are a profile's values in IndexMAC.
func MACKeys(profile *vmv1alpha1.VirtualMachineProfile) []string {
	return indexKeys(macIdentity())(profile)
}

// Key is a value in one of the profile indexes.
type Key struct{ Index, Value string }

// ClaimedKeys are the values a profile's spec claims, in their indexes:
// the profiles found by them compete with it for a value.
func ClaimedKeys(profile *vmv1alpha1.VirtualMachineProfile) []Key {
	var keys []Key
	for _, id := range identities() {
		for _, value := range indexKeys(id)(profile) {
			keys = append(keys, Key{Index: id.index, Value: value})
		}
	}
	return keys
}

// UsedKeys are the values a living instance uses, in the profile indexes:
// the profiles found by them wait for it to let go of a value.
func UsedKeys(vmi *kubevirtv1.VirtualMachineInstance) []Key {
	var keys []Key
	for _, id := range identities() {
		for _, used := range id.live(vmi) {
			for _, value := range used {
				keys = append(keys, Key{Index: id.index, Value: value})
			}
		}
	}
	return keys
}

// LiveValues are the addresses and MACs an instance uses, for IndexLive.
func LiveValues(vmi *kubevirtv1.VirtualMachineInstance) []string {
	var values []string
	for _, id := range identities() {
		for _, used := range id.live(vmi) {
			for _, value := range used {
				if !slices.Contains(values, value) {
					values = append(values, value)
				}
			}
		}
	}
	return values
}

// IndexInstances registers IndexLive (KubeVirt installed only).
func IndexInstances(ctx context.Context, indexer client.FieldIndexer) error {
	err := indexer.IndexField(ctx, &kubevirtv1.VirtualMachineInstance{}, IndexLive, func(obj client.Object) []string {
		return LiveValues(obj.(*kubevirtv1.VirtualMachineInstance))
	})
	if err != nil {
		return fmt.Errorf("index VirtualMachineInstances by %s: %w", IndexLive, err)
	}
	return nil
}
