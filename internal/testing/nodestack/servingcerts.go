package nodestack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// kubernetesServiceIP is the first address of envtest's service range
// (10.0.0.0/24): the kubernetes Service, which pods' in-cluster clients
// dial.
var kubernetesServiceIP = net.IPv4(10, 0, 0, 1)

// writeAPIServerCerts writes the apiserver's serving certificate into dir,
// as envtest would but naming also the kubernetes Service's address and the
// node's, and the service account signing key; it returns the CA's PEM.
func writeAPIServerCerts(dir string, ips []net.IP) ([]byte, error) {
	serving, err := issueFromNewCA("nodestack-apiserver-ca", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1), kubernetesServiceIP}, ips...),
	})
	if err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("service account signing key: %w", err)
	}
	saKeyDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, fmt.Errorf("service account signing key: %w", err)
	}
	saPublicDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("service account public key: %w", err)
	}
	err = writePEMFiles(map[string]*pem.Block{
		filepath.Join(dir, "apiserver.crt"):  {Type: "CERTIFICATE", Bytes: serving.certDER},
		filepath.Join(dir, "apiserver.key"):  {Type: "EC PRIVATE KEY", Bytes: serving.keyDER},
		filepath.Join(dir, "sa-signer.crt"):  {Type: "PUBLIC KEY", Bytes: saPublicDER},
		filepath.Join(dir, "sa-signer.key"):  {Type: "EC PRIVATE KEY", Bytes: saKeyDER},
		filepath.Join(dir, "serving-ca.crt"): {Type: "CERTIFICATE", Bytes: serving.caDER},
	})
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serving.caDER}), nil
}

// nodeIPs are the host's addresses on the interface of its default route,
// where the kubelet registers its node and host-network pods connect from.
func nodeIPs() []net.IP {
	routes, err := netlink.RouteGet(net.IPv4(192, 0, 2, 254))
	if err != nil || len(routes) == 0 || routes[0].Src == nil {
		return nil
	}
	return []net.IP{routes[0].Src}
}
