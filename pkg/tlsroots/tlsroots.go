// Package tlsroots owns how HTTPS servers are verified for discovery,
// images, signatures, keys and registries: against the CA certificates
// crypto/x509 would use on Linux (SSL_CERT_FILE or the first distribution
// bundle found, and SSL_CERT_DIR or the distribution directories), read in
// two steps so that a fetch seldom waits for the second.
//
// crypto/x509 reads and parses every file of /etc/ssl/certs before the
// first handshake: 10-18 ms here, most of it in the path of every fetch,
// although on Debian that directory holds the bundle's certificates again,
// one file each. Here a server is verified against the bundle first, and
// only if that fails against the bundle and the directories together. A
// chain that verifies against the bundle verifies against the whole set
// too, so what is accepted and refused does not change; only a server whose
// root is in a directory alone waits for the directories.
package tlsroots

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The places crypto/x509 looks on Linux, in its order.
var (
	bundles = []string{
		"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo
		"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
		"/etc/ssl/ca-bundle.pem",                            // openSUSE
		"/etc/pki/tls/cacert.pem",                           // OpenELEC
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
		"/etc/ssl/cert.pem",                                 // Alpine
	}
	directories = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// Roots are the CA certificates of one configuration, read as needed.
type Roots struct {
	file, dirs string
	bundle     func() (*x509.CertPool, error)
	all        func() (*x509.CertPool, error)
}

// The bundle's pool is never nil; its error (a file that exists but cannot
// be read) matters only if no certificate is found anywhere, as in
// crypto/x509.

// New returns the roots crypto/x509 would use with SSL_CERT_FILE set to
// file and SSL_CERT_DIR to dirs ("" for unset; dirs is colon-separated, as
// OpenSSL has it). Nothing is read yet.
func New(file, dirs string) *Roots {
	r := &Roots{file: file, dirs: dirs}
	r.bundle = sync.OnceValues(r.loadBundle)
	r.all = sync.OnceValues(r.loadAll)
	return r
}

var system = sync.OnceValue(func() *Roots {
	return New(os.Getenv("SSL_CERT_FILE"), os.Getenv("SSL_CERT_DIR"))
})

// System returns the roots of this process's environment.
func System() *Roots { return system() }

// Warm starts reading the bundle in the background.
func (r *Roots) Warm() { go func() { _, _ = r.bundle() }() }

func (r *Roots) loadBundle() (*x509.CertPool, error) {
	files := bundles
	if r.file != "" {
		files = []string{r.file}
	}
	pool := x509.NewCertPool()
	var firstErr error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			pool.AppendCertsFromPEM(data)
			return pool, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	return pool, firstErr
}

// loadAll is the bundle and every file of the directories, as crypto/x509
// reads them.
func (r *Roots) loadAll() (*x509.CertPool, error) {
	bundle, firstErr := r.bundle()
	pool := bundle.Clone()
	dirs := directories
	if r.dirs != "" {
		dirs = strings.Split(r.dirs, ":")
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
				firstErr = err
			}
			continue
		}
		for _, e := range entries {
			if sameDirLink(d, e) {
				continue
			}
			if data, err := os.ReadFile(filepath.Join(d, e.Name())); err == nil {
				pool.AppendCertsFromPEM(data)
			}
		}
	}
	if firstErr != nil && pool.Equal(x509.NewCertPool()) {
		return nil, firstErr
	}
	return pool, nil
}

// sameDirLink tells a symbolic link to another file of the same directory
// (OpenSSL's hash names), which crypto/x509 skips as a duplicate.
func sameDirLink(dir string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	target, err := os.Readlink(filepath.Join(dir, e.Name()))
	return err == nil && !strings.Contains(target, "/")
}

// Verify checks a server's certificate chain for host as crypto/tls does
// (the first certificate is the server's, the others intermediates, for
// server authentication at the current time), against the bundle and, if
// that fails, against every root.
func (r *Roots) Verify(host string, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: host, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	opts.Roots, _ = r.bundle()
	if _, err := certs[0].Verify(opts); err == nil {
		return nil
	}
	all, err := r.all()
	if err == nil {
		opts.Roots = all
		_, err = certs[0].Verify(opts)
	}
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	return nil
}

// DialTLS returns a DialTLSContext for an http.Transport: it dials with d
// and verifies the server with Verify, giving the handshake up to
// handshakeTimeout (the transport's own TLSHandshakeTimeout does not apply
// to it). The transport uses its own TLS, and crypto/x509's roots, for
// HTTPS through a proxy.
func (r *Roots) DialTLS(d *net.Dialer, handshakeTimeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, &tls.Config{
			ServerName: host,
			// Not skipped: VerifyConnection verifies every handshake,
			// resumed or not, as crypto/tls would, against these roots.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				return r.Verify(host, cs.PeerCertificates)
			},
		})
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}
