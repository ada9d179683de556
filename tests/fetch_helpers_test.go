package tests

// Helpers for the fetch and trust tests: a test CA, an HTTPS server in the
// test process serving discovery pages, images, signatures and keys, ACIs
// built in code, and OpenPGP keys made with the library and with GnuPG.

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/rktng/rkt/pkg/keystore"
)

// ftCA is a certificate authority made for one test.
type ftCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string
}

func newFtCA(t *testing.T) *ftCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rkt test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &ftCA{cert: cert, key: key, pemPath: p}
}

// proxiedHost is a name that only the test proxy resolves (to 127.0.0.1):
// Go never sends requests for 127.0.0.1 or localhost through a proxy.
const proxiedHost = "images.proxied.test"

// serverCert issues a certificate for 127.0.0.1, localhost and proxiedHost.
func (ca *ftCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", proxiedHost},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ftFile is one file the server serves.
type ftFile struct {
	data   []byte
	etag   string
	maxAge int
	// auth, if set, is the Authorization header the file requires.
	auth string
	// aws, if set, is the AWS signature (s3) the file requires, as an S3
	// bucket would.
	aws *awsKey
	// cutAt > 0 drops the connection after that many body bytes, once.
	cutAt int
	// hold, if set, stops the body after 1 MiB: the server signals
	// started and waits until hold is closed.
	hold    chan struct{}
	started chan struct{}
}

// ftServer is an HTTPS (or HTTP) server on 127.0.0.1 in the test process.
type ftServer struct {
	t    *testing.T
	srv  *httptest.Server
	Port string
	// Host is "127.0.0.1:PORT"; base is the scheme and host.
	Host string
	base string

	mu    sync.Mutex
	files map[string]*ftFile
	pages map[string]string // discovery pages by path
	// redirects maps paths to the URLs they redirect to.
	redirects map[string]string
	// gets counts full (200) responses per path; notModified 304s;
	// ranges the Range requests answered.
	gets        map[string]int
	notModified map[string]int
	ranges      map[string]int
	requests    int
}

// newFtServer starts a server: TLS with a certificate from ca, or, with ca
// nil, TLS with httptest's own certificate that nothing trusts.
func newFtServer(t *testing.T, ca *ftCA, plainHTTP bool) *ftServer {
	t.Helper()
	s := &ftServer{t: t, files: map[string]*ftFile{}, pages: map[string]string{},
		redirects: map[string]string{}, gets: map[string]int{}, notModified: map[string]int{}, ranges: map[string]int{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv.Listener = ln
	// Discovery with --insecure-options=http tries plain HTTP on the TLS
	// port; the server's complaints about that are noise.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	scheme := "https"
	switch {
	case plainHTTP:
		scheme = "http"
		s.srv.Start()
	case ca != nil:
		s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}}
		s.srv.StartTLS()
	default:
		s.srv.StartTLS()
	}
	t.Cleanup(s.srv.Close)
	_, s.Port, _ = net.SplitHostPort(ln.Addr().String())
	s.Host = "127.0.0.1:" + s.Port
	s.base = scheme + "://" + s.Host
	return s
}

// URL is the full URL of path on this server.
func (s *ftServer) URL(path string) string { return s.base + path }

func (s *ftServer) put(path string, f *ftFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = f
}

// redirect answers path with a 302 to target.
func (s *ftServer) redirect(path, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects[path] = target
}

// discoveryPage serves a page for prefix (a name like 127.0.0.1/org) with
// the given meta tags, whatever host the name has.
func (s *ftServer) discoveryPage(prefix string, metas ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := "/"
	if i := strings.Index(prefix, "/"); i >= 0 {
		path = prefix[i:]
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head>\n")
	for _, m := range metas {
		b.WriteString(m + "\n")
	}
	b.WriteString("</head><body>discovery</body></html>\n")
	s.pages[path] = b.String()
}

func (s *ftServer) count(m map[string]int, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m[path]
}

func (s *ftServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	if r.URL.Query().Get("ac-discovery") == "1" {
		page, ok := s.pages[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
		return
	}
	if to, ok := s.redirects[r.URL.Path]; ok {
		s.mu.Unlock()
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	f, ok := s.files[r.URL.Path]
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if f.auth != "" && r.Header.Get("Authorization") != f.auth {
		s.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if f.aws != nil {
		if err := f.aws.verify(r); err != nil {
			s.mu.Unlock()
			http.Error(w, "SignatureDoesNotMatch: "+err.Error(), http.StatusForbidden)
			return
		}
	}
	if f.etag != "" && r.Header.Get("If-None-Match") == f.etag {
		s.notModified[r.URL.Path]++
		s.mu.Unlock()
		w.Header().Set("ETag", f.etag)
		if f.maxAge > 0 {
			w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", f.maxAge))
		}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	cut := 0
	switch {
	case r.Method == http.MethodHead:
		// A probe (simple discovery) is not a download.
	case r.Header.Get("Range") != "":
		s.ranges[r.URL.Path]++
	default:
		s.gets[r.URL.Path]++
		cut = f.cutAt
		f.cutAt = 0
	}
	data, etag, maxAge, hold, started := f.data, f.etag, f.maxAge, f.hold, f.started
	s.mu.Unlock()
	if hold != nil {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data[:1<<20])
		w.(http.Flusher).Flush()
		close(started)
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		return
	}

	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if maxAge > 0 {
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", maxAge))
	}
	if cut > 0 {
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data[:cut])
		w.(http.Flusher).Flush()
		// Drop the connection in the middle of the body.
		panic(http.ErrAbortHandler)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// ftImage describes an ACI to build.
type ftImage struct {
	name    string
	version string
	// files maps rootfs paths to contents.
	files map[string][]byte
}

// build returns the uncompressed ACI.
func (im ftImage) build(t *testing.T) []byte {
	t.Helper()
	labels := []map[string]string{{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}}
	if im.version != "" {
		labels = append([]map[string]string{{"name": "version", "value": im.version}}, labels...)
	}
	manifest, err := json.Marshal(map[string]any{
		"acKind": "ImageManifest", "acVersion": "0.8.11", "name": im.name, "labels": labels,
		"app": map[string]any{"exec": []string{"/hello"}, "user": "0", "group": "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1500000000, 0)
	add := func(h *tar.Header, data []byte) {
		h.ModTime = mt
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg}, manifest)
	add(&tar.Header{Name: "rootfs/", Mode: 0o755, Typeflag: tar.TypeDir}, nil)
	files := im.files
	if files == nil {
		files = map[string][]byte{"hello": []byte("hello from " + im.name + "\n")}
	}
	for p, d := range files {
		add(&tar.Header{Name: "rootfs/" + p, Mode: 0o755, Size: int64(len(d)), Typeflag: tar.TypeReg}, d)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress runs a host compressor (gzip, bzip2, xz, zstd) over data.
func compressWith(t *testing.T, tool string, data []byte) []byte {
	t.Helper()
	cmd := exec.Command(tool, "-c")
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", tool, err, errb.String())
	}
	return out.Bytes()
}

// ftSigner is a signing key: its armored public key and a way to sign.
type ftSigner struct {
	name   string
	public []byte
	fp     string
	sign   func(data []byte) []byte
}

// libKey makes a key with the OpenPGP library: "rsa" or "ed25519".
func libKey(t *testing.T, algo string, cfg *packet.Config) ftSigner {
	t.Helper()
	if cfg == nil {
		cfg = &packet.Config{}
	}
	switch algo {
	case "rsa":
		cfg.Algorithm, cfg.RSABits = packet.PubKeyAlgoRSA, 2048
	case "ed25519":
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
	default:
		t.Fatalf("unknown algorithm %s", algo)
	}
	e, err := openpgp.NewEntity("Test "+algo, "", algo+"@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return signerOf(t, "lib-"+algo, e, nil)
}

func signerOf(t *testing.T, name string, e *openpgp.Entity, sigCfg *packet.Config) ftSigner {
	t.Helper()
	pub, err := keystore.ArmorPublic(e)
	if err != nil {
		t.Fatal(err)
	}
	return ftSigner{name: name, public: pub, fp: keystore.Fingerprint(e), sign: func(data []byte) []byte {
		var buf bytes.Buffer
		if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), sigCfg); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}}
}

// gpgKey makes a key with GnuPG in a private GNUPGHOME: algo is a
// --quick-gen-key algorithm ("rsa3072", "ed25519"); signArgs go to every
// signing (such as --digest-algo SHA512).
func gpgKey(t *testing.T, algo string, signArgs ...string) ftSigner {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = kill.Run()
		os.RemoveAll(home)
	})
	_ = os.Chmod(home, 0o700)
	gpg := func(stdin []byte, args ...string) []byte {
		cmd := exec.Command("gpg", append([]string{"--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v: %s", args, err, errb.String())
		}
		return out.Bytes()
	}
	uid := fmt.Sprintf("GnuPG %s <gpg-%s@example.com>", algo, algo)
	gpg(nil, "--quick-gen-key", uid, algo, "sign", "1y")
	var fp string
	for _, line := range strings.Split(string(gpg(nil, "--with-colons", "--list-keys", uid)), "\n") {
		if strings.HasPrefix(line, "fpr:") {
			fp = strings.ToLower(strings.Split(line, ":")[9])
			break
		}
	}
	if fp == "" {
		t.Fatal("gpg: no fingerprint")
	}
	pub := gpg(nil, "--armor", "--export", fp)
	return ftSigner{name: "gpg-" + algo, public: pub, fp: fp, sign: func(data []byte) []byte {
		return gpg(data, append([]string{"--local-user", fp, "--armor", "--detach-sign", "--output", "-"}, signArgs...)...)
	}}
}

// ftEnv is a test's rkt environment pointed at a server through the test
// CA and the discovery port.
type ftEnv struct {
	*env
	ca  *ftCA
	srv *ftServer
}

func newFtEnv(t *testing.T) *ftEnv {
	t.Helper()
	ca := newFtCA(t)
	return &ftEnv{env: newEnv(t), ca: ca, srv: newFtServer(t, ca, false)}
}

// rkt runs rkt trusting only the test CA, with discovery on the server's
// port, and stdin as given.
func (e *ftEnv) rkt(stdin string, args ...string) result {
	e.t.Helper()
	cmd := e.Cmd(args...)
	cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+e.ca.pemPath, "SSL_CERT_DIR=/nonexistent", "RKT_DISCOVERY_PORT="+e.srv.Port)
	cmd.Stdin = strings.NewReader(stdin)
	return e.RunCmd(cmd)
}

func (e *ftEnv) mustRkt(args ...string) string {
	e.t.Helper()
	r := e.rkt("", args...)
	if r.Code != 0 {
		e.t.Fatalf("rkt %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.Stdout)
}

// mustRefuse runs rkt, expects a failure whose one-line message contains
// want, and checks that nothing entered the store.
func (e *ftEnv) mustRefuse(want string, args ...string) result {
	e.t.Helper()
	before := e.blobs()
	r := e.rkt("", args...)
	if r.Code == 0 {
		e.t.Fatalf("rkt %s succeeded, want refusal: %s", strings.Join(args, " "), r)
	}
	e.t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
	if r.Code != 254 {
		e.t.Errorf("exit code %d, want 254", r.Code)
	}
	if !strings.Contains(r.Stderr, want) {
		e.t.Errorf("rkt %s: stderr lacks %q: %s", strings.Join(args, " "), want, r)
	}
	if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines != 1 {
		e.t.Errorf("refusal took %d lines, want one: %s", lines, r.Stderr)
	}
	if after := e.blobs(); after != before {
		e.t.Errorf("the store went from %d to %d blobs on a refused fetch", before, after)
	}
	e.noTemps()
	return r
}

// blobs counts image blobs in the store.
func (e *ftEnv) blobs() int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(e.Dir, "cas", "blob"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// noTemps fails the test if a refused fetch left temporary files.
func (e *ftEnv) noTemps() {
	e.t.Helper()
	ents, _ := os.ReadDir(filepath.Join(e.Dir, "cas", "tmp"))
	for _, d := range ents {
		e.t.Errorf("left in the store's tmp: %s", d.Name())
	}
}

// trustFile writes key into a file and trusts it for prefix ("" = root).
func (e *ftEnv) trust(prefix string, key ftSigner) {
	e.t.Helper()
	p := filepath.Join(e.root, key.name+"-"+key.fp[:8]+".asc")
	if err := os.WriteFile(p, key.public, 0o644); err != nil {
		e.t.Fatal(err)
	}
	args := []string{"trust", "--skip-fingerprint-review"}
	if prefix == "" {
		args = append(args, "--root")
	} else {
		args = append(args, "--prefix="+prefix)
	}
	e.mustRkt(append(args, p)...)
}

// publish serves an image and (if signer is set) its signature at path.
func (e *ftEnv) publish(path string, aci []byte, signer *ftSigner) {
	e.srv.put(path, &ftFile{data: aci})
	if signer != nil {
		e.srv.put(path+".asc", &ftFile{data: signer.sign(aci)})
	}
}

// discoveryMeta is the ac-discovery tag for prefix on this server.
func (e *ftEnv) discoveryMeta(prefix string) string {
	return fmt.Sprintf(`<meta name="ac-discovery" content="%s %s/images/{name}-{version}-{os}-{arch}.{ext}">`, prefix, e.srv.URL(""))
}

// imagePath is where discoveryMeta's template puts name:version.
func imagePath(name, version string) string {
	return fmt.Sprintf("/images/%s-%s-linux-amd64.aci", name, version)
}
