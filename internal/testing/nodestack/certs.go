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
	"os"
	"path/filepath"
	"time"
)

// kubeletClientCerts are the files of the apiserver's connection to the
// kubelet (logs, exec, port-forward): a CA the kubelet trusts for client
// certificates, and the apiserver's certificate from it, as kubeadm's
// apiserver-kubelet-client.
type kubeletClientCerts struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// writeKubeletClientCerts makes the CA and the apiserver's client
// certificate in dir. The apiserver's user is in system:masters, so the
// kubelet's webhook authorization (a SubjectAccessReview) admits it, as
// kubeadm's does.
func writeKubeletClientCerts(dir string) (kubeletClientCerts, error) {
	files := kubeletClientCerts{
		CAFile:   filepath.Join(dir, "kubelet-client-ca.crt"),
		CertFile: filepath.Join(dir, "apiserver-kubelet-client.crt"),
		KeyFile:  filepath.Join(dir, "apiserver-kubelet-client.key"),
	}
	issued, err := issueFromNewCA("nodestack-kubelet-client-ca", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return files, fmt.Errorf("apiserver kubelet client certificate: %w", err)
	}
	return files, writePEMFiles(map[string]*pem.Block{
		files.CAFile:   {Type: "CERTIFICATE", Bytes: issued.caDER},
		files.CertFile: {Type: "CERTIFICATE", Bytes: issued.certDER},
		files.KeyFile:  {Type: "EC PRIVATE KEY", Bytes: issued.keyDER},
	})
}

// issued is a certificate with its key and the CA that signed it, in DER.
type issued struct {
	caDER, certDER, keyDER []byte
}

// issueFromNewCA makes a CA named caName and signs leaf with it (a fresh
// key, valid from an hour ago for a day): the test's certificates live as
// long as its stack.
func issueFromNewCA(caName string, leaf *x509.Certificate) (issued, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return issued{}, fmt.Errorf("key of CA %s: %w", caName, err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: caName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return issued{}, fmt.Errorf("CA %s: %w", caName, err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return issued{}, fmt.Errorf("CA %s: %w", caName, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return issued{}, fmt.Errorf("key of %s: %w", leaf.Subject.CommonName, err)
	}
	leaf.SerialNumber = big.NewInt(2)
	leaf.NotBefore, leaf.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	leaf.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return issued{}, fmt.Errorf("certificate %s: %w", leaf.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return issued{}, fmt.Errorf("key of %s: %w", leaf.Subject.CommonName, err)
	}
	return issued{caDER: caDER, certDER: der, keyDER: keyDER}, nil
}

// writePEMFiles writes each block to its path, readable by root only.
func writePEMFiles(blocks map[string]*pem.Block) error {
	for path, block := range blocks {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
