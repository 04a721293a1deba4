package secure

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

// TestSelfSignedCertificateServes: with no directory, a TLS server offers a
// certificate for the host that verifies against itself, in date, and
// negotiates HTTP/1.1 even when the client offers HTTP/2 first.
func TestSelfSignedCertificateServes(t *testing.T) {
	cert, err := LoadCertificate("", "vmop-agent")
	if err != nil {
		t.Fatal(err)
	}
	if cert.Watcher != nil {
		t.Errorf("a self-signed certificate has a file watcher")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go func() { _ = server.Serve(tls.NewListener(listener, TLSConfig(cert))) }()
	t.Cleanup(func() { _ = server.Close() })

	conn, err := tls.Dial("tcp", listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}) //nolint:gosec // checked below
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	state := conn.ConnectionState()
	if state.NegotiatedProtocol != "http/1.1" {
		t.Errorf("negotiated %q, want http/1.1 (HTTP/2 off)", state.NegotiatedProtocol)
	}
	if state.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x below 1.2", state.Version)
	}
	leaf := state.PeerCertificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "vmop-agent", Roots: roots}); err != nil {
		t.Errorf("self-signed certificate does not verify against itself for vmop-agent: %v", err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key %T, want ECDSA", leaf.PublicKey)
	}
}

// TestCertificateDirectory: a directory's tls.crt and tls.key are served;
// a directory without them is an error, not a silent self-signed fallback.
func TestCertificateDirectory(t *testing.T) {
	if _, err := LoadCertificate(t.TempDir(), "vmop-agent"); err == nil {
		t.Errorf("a directory without tls.crt and tls.key was accepted")
	}
	pair, err := SelfSigned("mounted", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, block := range map[string]*pem.Block{CertFile: {Type: "CERTIFICATE", Bytes: pair.Certificate[0]}, KeyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := LoadCertificate(dir, "vmop-agent")
	if err != nil {
		t.Fatal(err)
	}
	if cert.Watcher == nil {
		t.Errorf("no watcher for a mounted certificate (a renewal would be missed)")
	}
	served, err := cert.Get(&tls.ClientHelloInfo{})
	if err != nil || served == nil || string(served.Certificate[0]) != string(pair.Certificate[0]) {
		t.Errorf("served %v (%v), want the directory's certificate", served, err)
	}
}

// BenchmarkSelfSigned and BenchmarkClientGoSelfSigned compare the start-up
// cost of SelfSigned with client-go's certutil, which controller-runtime
// uses by default.
func BenchmarkSelfSigned(b *testing.B) {
	for b.Loop() {
		if _, err := SelfSigned("vmop-agent", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientGoSelfSigned(b *testing.B) {
	for b.Loop() {
		if _, _, err := certutil.GenerateSelfSignedCertKey("vmop-agent", nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
