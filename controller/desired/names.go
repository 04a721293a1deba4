package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// OwnedLabels are the labels every namespaced child of a profile carries.
func OwnedLabels(profile *vmv1alpha1.VirtualMachineProfile) map[string]string {
	return map[string]string{vmv1alpha1.LabelProfile: profile.Name, vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue}
}

// OwnerReference makes the profile the controller owner of a child.
func OwnerReference(profile *vmv1alpha1.VirtualMachineProfile) metav1.OwnerReference {
	return *metav1.NewControllerRef(profile, vmv1alpha1.GroupVersion.WithKind("VirtualMachineProfile"))
}

// NADName is the NetworkAttachmentDefinition the operator creates for a
// network without nadName: one per profile and network, so profiles never
// share (and fight over) an attachment.
func NADName(profileName, networkName string) string {
	return profileName + "-" + networkName
}

// CloudInitSecretName is the Secret holding a profile's cloud-init data.
func CloudInitSecretName(profileName string) string {
	return profileName + "-cloudinit"
}

// BridgeName is the host bridge of a bridge or OVS network: bridgeName, or
// "br-" and the network name (cut to the 15 characters Linux allows) when unset.
func BridgeName(network *vmv1alpha1.NetworkConfig) string {
	if network.BridgeName != "" {
		return network.BridgeName
	}
	name := "br-" + network.Name
	if len(name) > 15 {
		name = strings.TrimRight(name[:15], "-")
	}
	return name
}

// MACAddress is the guest MAC of a network: macAddress when set, else one
// derived from namespace, profile and network name, so it is the same every
// time the VM is re-created. The derived MAC is locally administered and unicast.
func MACAddress(profile *vmv1alpha1.VirtualMachineProfile, network *vmv1alpha1.NetworkConfig) string {
	if network.MACAddress != "" {
		return strings.ToLower(network.MACAddress)
	}
	sum := sha256.Sum256([]byte(profile.Namespace + "/" + profile.Name + "/" + network.Name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac.String()
}

// hashOf is a short, stable hash of the given strings.
func hashOf(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:10]
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
