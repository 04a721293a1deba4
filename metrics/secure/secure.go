// Package secure serves a /metrics endpoint the way controller-runtime's
// secure metrics server does, as kubebuilder scaffolds it: over TLS, and
// only to a client whose bearer token the apiserver authenticates (a
// TokenReview) and authorizes for GET on the non-resource URL /metrics (a
// SubjectAccessReview). vmop-controller hands these pieces to
// controller-runtime's metrics server; vmop-agent, which serves a registry
// of its own, wraps its handler with the same filter.
package secure

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
)

// CertFile and KeyFile are the file names of a kubernetes.io/tls Secret
// (cert-manager's Certificates write them) mounted as the certificate directory.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Certificate is the serving certificate of a metrics endpoint.
type Certificate struct {
	// Get is what tls.Config.GetCertificate calls.
	Get func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Watcher reloads the files when they change (a renewed certificate);
	// nil for a self-signed one. Its Start runs until the context ends.
	Watcher *certwatcher.CertWatcher
}

// LoadCertificate reads tls.crt and tls.key from dir and keeps them
// current. An empty dir makes a self-signed certificate for host, as
// controller-runtime and kube-controller-manager do: the traffic is
// encrypted, and scrapers skip verification (insecureSkipVerify). A dir
// without the files is an error, not a silent self-signed fallback, so a
// missing Secret mount shows at start.
func LoadCertificate(dir, host string) (Certificate, error) {
	if dir == "" {
		pair, err := SelfSigned(host, time.Now())
		if err != nil {
			return Certificate{}, fmt.Errorf("self-signed metrics certificate for %s: %w", host, err)
		}
		return Certificate{Get: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }}, nil
	}
	watcher, err := certwatcher.New(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return Certificate{}, fmt.Errorf("metrics certificate in %s: %w", dir, err)
	}
	return Certificate{Get: watcher.GetCertificate, Watcher: watcher}, nil
}

// selfSignedValidity is how long a self-signed certificate is valid, as
// client-go's certutil makes them. Scrapers skip verification anyway.
const selfSignedValidity = 365 * 24 * time.Hour

// SelfSigned makes a certificate for host signed by its own ECDSA P-256
// key, valid from an hour before now. Not client-go's certutil: that makes
// two RSA-2048 keys (a CA and the certificate): 386 ms against 0.54 ms
// (BenchmarkSelfSigned on this 2-core machine), and far longer in make
// dev's emulated node VM, while the agent's first Lease renewal waits.
func SelfSigned(host string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate for %s: key: %w", host, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate for %s: serial: %w", host, err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate for %s: %w", host, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ConfigureTLS serves cert over TLS 1.2 or later and HTTP/1.1 only:
// kubebuilder turns HTTP/2 off by default since the HTTP/2 stream
// cancellation (Rapid Reset, CVE-2023-44487) attacks, and a scrape needs
// nothing HTTP/2 offers. It is a controller-runtime TLSOpts function.
func ConfigureTLS(cert Certificate) func(*tls.Config) {
	return func(c *tls.Config) {
		c.GetCertificate = cert.Get
		c.MinVersion = tls.VersionTLS12
		c.NextProtos = []string{"http/1.1"}
	}
}

// TLSConfig is ConfigureTLS applied to an empty configuration.
func TLSConfig(cert Certificate) *tls.Config {
	c := &tls.Config{}
	ConfigureTLS(cert)(c)
	return c
}

// Authorized lets a request reach handler only when the apiserver at
// config authenticates its bearer token (401 otherwise) and authorizes its
// user for the request's verb on its path (403 otherwise), caching both
// answers (a minute for tokens, five for allowed and 30 s for denied
// requests) so scrapes do not load the apiserver. The identity of config
// needs create on tokenreviews and subjectaccessreviews.
func Authorized(config *rest.Config, handler http.Handler, log logr.Logger) (http.Handler, error) {
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, fmt.Errorf("HTTP client for metrics authorization: %w", err)
	}
	filter, err := filters.WithAuthenticationAndAuthorization(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics authentication and authorization: %w", err)
	}
	return filter(log, handler)
}
