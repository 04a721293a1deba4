package desired

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Keys of the cloud-init Secret, as KubeVirt's cloudInitNoCloud reads them.
const (
	UserDataKey    = "userdata"
	NetworkDataKey = "networkdata"
)

// MaxInlineCloudInitBytes is the most user data, and the most network data,
// KubeVirt takes inline in a cloudInitNoCloud volume: cloudInitUserMaxLen
// and cloudInitNetworkMaxLen of its VMI admitter (v1.8.0,
// pkg/virt-api/webhooks/validating-webhook/admitters), both 2048 bytes.
//
// Cloud-init data goes inline whenever both fit, so the controller needs no
// Secret for it, and no right to read any Secret. The CRD's bounds do not
// guarantee a fit: 16 networks with static IPv6 addresses, gateways and
// three DNS servers each make about 5 KiB of network data
// (TestLargestProfileCloudInit). Only such profiles get a
// <profile>-cloudinit Secret, written blind (server-side apply, never read)
// and only when vmv1alpha1.AnnotationCloudInitHash on the VM says its content changed.
const MaxInlineCloudInitBytes = 2048

// GuestInterfaceName is the name the guest gives the i-th network: cloud-init
// renames the NIC with this MAC to it, whatever the distribution would call it.
func GuestInterfaceName(i int) string {
	return fmt.Sprintf("eth%d", i)
}

// netplan v2, the network-config format cloud-init's NoCloud source reads.
type netplan struct {
	Version   int                        `json:"version"`
	Ethernets map[string]netplanEthernet `json:"ethernets"`
}

type netplanEthernet struct {
	Match       netplanMatch        `json:"match"`
	SetName     string              `json:"set-name"`
	DHCP4       bool                `json:"dhcp4"`
	Addresses   []string            `json:"addresses,omitempty"`
	Routes      []netplanRoute      `json:"routes,omitempty"`
	Gateway6    string              `json:"gateway6,omitempty"`
	Nameservers *netplanNameservers `json:"nameservers,omitempty"`
	MTU         int32               `json:"mtu,omitempty"`
}

type netplanMatch struct {
	MACAddress string `json:"macaddress"`
}

type netplanRoute struct {
	To  string `json:"to"`
	Via string `json:"via"`
}

type netplanNameservers struct {
	Addresses []string `json:"addresses"`
}

// NetworkData is the netplan v2 document configuring every network of the
// profile in the guest, each NIC matched by its MAC.
func NetworkData(profile *vmv1alpha1.VirtualMachineProfile) (string, error) {
	doc := netplan{Version: 2, Ethernets: map[string]netplanEthernet{}}
	for i := range profile.Spec.Networks {
		network := &profile.Spec.Networks[i]
		name := GuestInterfaceName(i)
		eth := netplanEthernet{Match: netplanMatch{MACAddress: MACAddress(profile, network)}, SetName: name}
		if network.MTU != nil {
			eth.MTU = *network.MTU
		}
		applyIPConfig(&eth, network.IPConfig)
		doc.Ethernets[name] = eth
	}
	raw, err := yaml.Marshal(doc)
	return string(raw), err
}

func applyIPConfig(eth *netplanEthernet, ip *vmv1alpha1.IPConfigSpec) {
	if ip == nil {
		return // link up, no address: the guest or the user decides
	}
	if ip.Mode == vmv1alpha1.IPModeDHCP {
		eth.DHCP4 = true
	}
	if ip.Mode == vmv1alpha1.IPModeStatic && ip.Address != nil {
		eth.Addresses = []string{*ip.Address}
	}
	if ip.Gateway != nil {
		gateway := string(*ip.Gateway)
		if strings.Contains(gateway, ":") {
			// Not a "::/0" route: cloud-init 22.4 renders that as a route to
			// ::/64 and the guest gets no IPv6 default route
			// (TestIPv6DefaultRouteSurvivesCloudInit). gateway6 is rendered
			// as the default route by every cloud-init.
			eth.Gateway6 = gateway
		} else {
			eth.Routes = []netplanRoute{{To: "0.0.0.0/0", Via: gateway}}
		}
	}
	if len(ip.DNSServers) > 0 {
		eth.Nameservers = &netplanNameservers{}
		for _, server := range ip.DNSServers {
			eth.Nameservers.Addresses = append(eth.Nameservers.Addresses, string(server))
		}
	}
}

// UserData is the cloud-config of the guest. It holds no secrets: the SSH key
// reaches the guest through KubeVirt's accessCredentials, straight from the
// user's Secret.
func UserData(profile *vmv1alpha1.VirtualMachineProfile) string {
	return "#cloud-config\nhostname: " + profile.Name + "\n"
}

// CloudInitFitsInline says whether user data and network data both fit
// inline in the VM (see MaxInlineCloudInitBytes).
func CloudInitFitsInline(userData, networkData string) bool {
	return len(userData) <= MaxInlineCloudInitBytes && len(networkData) <= MaxInlineCloudInitBytes
}

// CloudInitHash is the hash of a cloud-init Secret's data, as
// AnnotationCloudInitHash records it.
func CloudInitHash(secret *corev1.Secret) string {
	return hashOf(string(secret.Data[UserDataKey]), string(secret.Data[NetworkDataKey]))
}

// cloudInitVolume is the VM's cloud-init disk: the data inline when it
// fits, else a reference to the profile's cloud-init Secret, with the hash
// of that Secret's data as annotations to put on the VM. The Secret keeps
// both keys (as earlier versions wrote it) so that a running VM which
// still refers to it for both keeps working, on a migration too.
func cloudInitVolume(profile *vmv1alpha1.VirtualMachineProfile) (kubevirtv1.Volume, map[string]string, error) {
	userData := UserData(profile)
	networkData, err := NetworkData(profile)
	if err != nil {
		return kubevirtv1.Volume{}, nil, fmt.Errorf("network data of profile %s/%s: %w", profile.Namespace, profile.Name, err)
	}
	volume := kubevirtv1.Volume{Name: CloudInitVolume}
	if CloudInitFitsInline(userData, networkData) {
		volume.CloudInitNoCloud = &kubevirtv1.CloudInitNoCloudSource{UserData: userData, NetworkData: networkData}
		return volume, nil, nil
	}
	secret, err := CloudInitSecret(profile)
	if err != nil {
		return kubevirtv1.Volume{}, nil, err
	}
	ref := &corev1.LocalObjectReference{Name: secret.Name}
	volume.CloudInitNoCloud = &kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: ref, NetworkDataSecretRef: ref}
	return volume, map[string]string{vmv1alpha1.AnnotationCloudInitHash: CloudInitHash(secret)}, nil
}

// CloudInitSecret holds the profile's user data and network data. The
// controller writes it only for profiles whose data does not fit inline.
func CloudInitSecret(profile *vmv1alpha1.VirtualMachineProfile) (*corev1.Secret, error) {
	networkData, err := NetworkData(profile)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            CloudInitSecretName(profile.Name),
			Namespace:       profile.Namespace,
			Labels:          OwnedLabels(profile),
			OwnerReferences: []metav1.OwnerReference{OwnerReference(profile)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			UserDataKey:    []byte(UserData(profile)),
			NetworkDataKey: []byte(networkData),
		},
	}, nil
}
