package desired

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Keys of the cloud-init Secret, as KubeVirt's cloudInitNoCloud reads them.
const (
	UserDataKey    = "userdata"
	NetworkDataKey = "networkdata"
)

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

// CloudInitSecret holds the profile's user data and network data.
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
