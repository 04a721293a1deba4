package nodestack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

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
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("apiserver CA key: %w", err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nodestack-apiserver-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("apiserver CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("apiserver CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("apiserver serving key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1), kubernetesServiceIP}, ips...),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("apiserver serving key: %w", err)
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
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, block := range map[string]*pem.Block{
		"apiserver.crt":  {Type: "CERTIFICATE", Bytes: der},
		"apiserver.key":  {Type: "EC PRIVATE KEY", Bytes: keyDER},
		"sa-signer.crt":  {Type: "PUBLIC KEY", Bytes: saPublicDER},
		"sa-signer.key":  {Type: "EC PRIVATE KEY", Bytes: saKeyDER},
		"serving-ca.crt": {Type: "CERTIFICATE", Bytes: caDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
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
