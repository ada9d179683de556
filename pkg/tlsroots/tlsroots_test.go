package tlsroots

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a server certificate for host, valid until notAfter.
func (c *ca) leaf(t *testing.T, host string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerify: the bundle alone answers for its own roots (the directories
// are not read), a root found only in a directory is still trusted, and
// everything crypto/tls refuses is refused.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	inBundle, inDir, stranger := newCA(t, "bundle CA"), newCA(t, "dir CA"), newCA(t, "stranger")
	bundle := filepath.Join(dir, "bundle.pem")
	write(t, bundle, inBundle.pem)
	certs := filepath.Join(dir, "certs")
	write(t, filepath.Join(certs, "dir-ca.pem"), inDir.pem)
	if err := os.Symlink("dir-ca.pem", filepath.Join(certs, "abcdef01.0")); err != nil {
		t.Fatal(err)
	}

	r := New(bundle, certs)
	all := r.all
	dirReads := 0
	r.all = func() (*x509.CertPool, error) { dirReads++; return all() }
	later := time.Now().Add(time.Hour)

	if err := r.Verify("example.test", []*x509.Certificate{inBundle.leaf(t, "example.test", later)}); err != nil || dirReads != 0 {
		t.Fatalf("root in the bundle: %v (directories read %d times)", err, dirReads)
	}
	if err := r.Verify("127.0.0.1", []*x509.Certificate{inDir.leaf(t, "127.0.0.1", later)}); err != nil || dirReads != 1 {
		t.Fatalf("root in a directory: %v (directories read %d times)", err, dirReads)
	}
	for name, tc := range map[string]struct {
		host string
		cert *x509.Certificate
		want any
	}{
		"unknown authority": {"example.test", stranger.leaf(t, "example.test", later), &x509.UnknownAuthorityError{}},
		"other host":        {"other.test", inBundle.leaf(t, "example.test", later), &x509.HostnameError{}},
		"expired":           {"example.test", inBundle.leaf(t, "example.test", time.Now().Add(-time.Hour)), &x509.CertificateInvalidError{}},
	} {
		err := r.Verify(tc.host, []*x509.Certificate{tc.cert})
		var cve *tls.CertificateVerificationError
		if !errors.As(err, &cve) {
			t.Errorf("%s: got %v, want a certificate verification error", name, err)
			continue
		}
		switch tc.want.(type) {
		case *x509.UnknownAuthorityError:
			var e x509.UnknownAuthorityError
			if !errors.As(err, &e) {
				t.Errorf("%s: %v", name, err)
			}
		case *x509.HostnameError:
			var e x509.HostnameError
			if !errors.As(err, &e) {
				t.Errorf("%s: %v", name, err)
			}
		case *x509.CertificateInvalidError:
			var e x509.CertificateInvalidError
			if !errors.As(err, &e) {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if err := r.Verify("example.test", nil); err == nil {
		t.Error("no certificate was accepted")
	}
}

// TestAllMatchesCryptoX509: the whole set is what crypto/x509 reads for the
// same SSL_CERT_FILE and SSL_CERT_DIR.
func TestAllMatchesCryptoX509(t *testing.T) {
	dir := t.TempDir()
	a, b, c := newCA(t, "A"), newCA(t, "B"), newCA(t, "C")
	bundle := filepath.Join(dir, "bundle.crt")
	write(t, bundle, append(append([]byte("junk\n"), a.pem...), b.pem...))
	certs := filepath.Join(dir, "certs")
	write(t, filepath.Join(certs, "a.pem"), a.pem)
	write(t, filepath.Join(certs, "c.pem"), c.pem)
	if err := os.Symlink("c.pem", filepath.Join(certs, "0123abcd.0")); err != nil {
		t.Fatal(err)
	}
	dirs := certs + ":" + filepath.Join(dir, "missing")
	got, err := New(bundle, dirs).all()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	t.Setenv("SSL_CERT_DIR", dirs)
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatal("the whole set differs from crypto/x509's")
	}
	none, err := New(filepath.Join(dir, "none"), filepath.Join(dir, "none")).all()
	if err != nil || !none.Equal(x509.NewCertPool()) {
		t.Fatalf("nothing to read: %v, %v; want an empty set", none, err)
	}
}
