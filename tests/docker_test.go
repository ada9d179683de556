package tests

// Docker and OCI images: a registry (go-containerregistry's pkg/registry)
// in the test process on 127.0.0.1, plain HTTP or behind TLS with a test
// CA; images built here with whiteouts, opaque directories, hard links and
// symlinks across layers, in Docker schema 2 and OCI media types; an OCI
// layout directory for oci:.

import (
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
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	ot "github.com/rktng/rkt/pkg/ociconv/ocitest"
	"golang.org/x/sys/unix"
)

// dkCA is a certificate authority made for one test, and the PEM file
// rkt is pointed at with SSL_CERT_FILE.
type dkCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string
	pool    *x509.CertPool
}

func newDkCA(t *testing.T) *dkCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rkt docker test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
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
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &dkCA{cert: cert, key: key, pemPath: p, pool: pool}
}

func (ca *dkCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// dkRegistry is a registry on 127.0.0.1 that counts the requests it gets.
type dkRegistry struct {
	t    *testing.T
	Host string
	ca   *dkCA // nil: plain HTTP
	user string
	pass string
	// With bearer set (newDkTokenRegistry), every request needs that
	// bearer token; /token is the registry's token service, which gives
	// it in exchange for the OAuth2 refresh token refresh.
	bearer, refresh string

	mu       sync.Mutex
	requests []string // "METHOD /path"
}

// newDkRegistry starts a registry: plain HTTP when ca is nil, else TLS
// with a certificate from ca; with user set, every request needs basic
// auth (a registry answering 401 without credentials).
func newDkRegistry(t *testing.T, ca *dkCA, user, pass string) *dkRegistry {
	t.Helper()
	r := &dkRegistry{t: t, ca: ca, user: user, pass: pass}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if r.bearer != "" {
			if req.URL.Path == "/token" {
				r.token(w, req)
				return
			}
			if req.Header.Get("Authorization") != "Bearer "+r.bearer {
				scheme := "http"
				if r.ca != nil {
					scheme = "https"
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+scheme+"://"+r.Host+`/token",service="rkt-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if r.user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="rkt test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		reg.ServeHTTP(w, req)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	// Refused handshakes are what some tests check; they need no log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if ca != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	r.Host = ln.Addr().String()
	return r
}

// newDkTokenRegistry starts a registry (TLS with a certificate from ca)
// that takes bearer tokens only: bearer itself, or what its token service
// gives for the refresh token.
func newDkTokenRegistry(t *testing.T, ca *dkCA, bearer, refresh string) *dkRegistry {
	r := newDkRegistry(t, ca, "", "")
	r.mu.Lock()
	r.bearer, r.refresh = bearer, refresh
	r.mu.Unlock()
	return r
}

// token answers the OAuth2 refresh-token grant of Docker's token
// specification; every other request for a token is refused.
func (r *dkRegistry) token(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.ParseForm() != nil || req.PostForm.Get("grant_type") != "refresh_token" ||
		req.PostForm.Get("refresh_token") != r.refresh || req.PostForm.Get("service") != "rkt-test" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token": %q, "expires_in": 300}`, r.bearer)
}

func (r *dkRegistry) remoteOpts() []remote.Option {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.ca != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.ca.pool}
	}
	opts := []remote.Option{remote.WithTransport(tr)}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	if r.bearer != "" {
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{RegistryToken: r.bearer})))
	}
	return opts
}

// push uploads img as repo:tag and returns its manifest digest.
func (r *dkRegistry) push(repoTag string, img v1.Image) string {
	r.t.Helper()
	var opts []name.Option
	if r.ca == nil {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Host+"/"+repoTag, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.remoteOpts()...); err != nil {
		r.t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	return d.String()
}

// count tells how many requests so far match method and contain part.
func (r *dkRegistry) count(method, part string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.requests {
		if strings.HasPrefix(q, method+" ") && strings.Contains(q, part) {
			n++
		}
	}
	return n
}

// dkEnv is a private rkt installation with a helper to run rkt trusting
// only a given CA.
type dkEnv struct {
	*env
	caFile string
}

func newDkEnv(t *testing.T, ca *dkCA) *dkEnv {
	e := &dkEnv{env: newEnv(t), caFile: "/nonexistent"}
	if ca != nil {
		e.caFile = ca.pemPath
	}
	return e
}

func (e *dkEnv) rkt(args ...string) result {
	e.t.Helper()
	cmd := e.Cmd(args...)
	cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+e.caFile, "SSL_CERT_DIR=/nonexistent")
	return e.RunCmd(cmd)
}

func (e *dkEnv) mustRkt(args ...string) string {
	e.t.Helper()
	r := e.rkt(args...)
	if r.Code != 0 {
		e.t.Fatalf("rkt %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.Stdout)
}

// mustRefuse expects exit 254 with one line on stderr containing want, and
// nothing added to the store or left in its tmp.
func (e *dkEnv) mustRefuse(want string, args ...string) {
	e.t.Helper()
	before := e.blobCount()
	r := e.rkt(args...)
	if r.Code != 254 {
		e.t.Fatalf("rkt %s: exit %d, want 254: %s", strings.Join(args, " "), r.Code, r)
	}
	if !strings.Contains(r.Stderr, want) {
		e.t.Errorf("rkt %s: stderr lacks %q: %s", strings.Join(args, " "), want, r.Stderr)
	}
	if n := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; n != 1 {
		e.t.Errorf("refusal took %d lines, want one: %s", n, r.Stderr)
	}
	if after := e.blobCount(); after != before {
		e.t.Errorf("store went from %d to %d blobs on a refused fetch", before, after)
	}
	ents, _ := os.ReadDir(filepath.Join(e.Dir, "cas", "tmp"))
	for _, d := range ents {
		e.t.Errorf("left in the store's tmp: %s", d.Name())
	}
}

func (e *dkEnv) blobCount() int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(e.Dir, "cas", "blob"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// manifest is `rkt image cat-manifest` parsed.
func (e *dkEnv) manifest(id string) *schema.ImageManifest {
	e.t.Helper()
	var im schema.ImageManifest
	if err := json.Unmarshal([]byte(e.mustRkt("image", "cat-manifest", id)), &im); err != nil {
		e.t.Fatalf("cat-manifest %s: %v", id, err)
	}
	return &im
}

// render writes the image's rootfs, as a pod sees it, to a new directory.
func (e *dkEnv) render(id string) string {
	e.t.Helper()
	dir := filepath.Join(e.root, "render-"+strings.ReplaceAll(id, ":", "_"))
	e.mustRkt("image", "render", "--rootfs-only", id, dir)
	return dir
}

// layeredImage has every case the flattening must get right.
func layeredImage(t *testing.T, oci bool) v1.Image {
	t.Helper()
	l0 := ot.Layer(oci,
		ot.Dir("etc"), ot.File("etc/passwd", "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n"),
		ot.Dir("a"), ot.File("a/x", "x0"), ot.File("a/y", "y0"), ot.File("a/keep", "keep"),
		ot.Dir("b"), ot.File("b/z", "z0"),
		ot.Dir("c"), ot.File("c/old", "old"), ot.Dir("c/olddir"), ot.File("c/olddir/f", "f"),
		ot.File("shared", "shared0"), ot.Hardlink("shared-link", "shared"),
		ot.Entry{Name: "suid", Body: "s", Mode: 0o4750, Uid: 7, Gid: 8},
		ot.Entry{Name: "xattr", Body: "x", Xattrs: map[string]string{"user.rkt": "kept"}},
	)
	l1 := ot.Layer(oci,
		ot.Whiteout("a", "x"), ot.Whiteout("", "b"),
		ot.Dir("c"), ot.Opaque("c"), ot.File("c/new", "new"),
		ot.Dir("d"), ot.Hardlink("d/hard-y", "a/y"), ot.Symlink("d/sym-y", "../a/y"),
		ot.Hardlink("d/hard-keep", "a/keep"),
	)
	l2 := ot.Layer(oci, ot.File("a/y", "y2"))
	img, err := ot.Image(oci, v1.Config{
		Entrypoint:   []string{"/bin/server"},
		Cmd:          []string{"--port", "80"},
		Env:          []string{"PATH=/usr/bin:/bin", "MODE=test"},
		WorkingDir:   "/srv",
		User:         "web",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Labels:       map[string]string{"org.example.team": "infra"},
	}, l0, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkRootfs asserts the flattened content of layeredImage.
func checkRootfs(t *testing.T, root string) {
	t.Helper()
	for p, want := range map[string]string{
		"a/y": "y2", "a/keep": "keep", "c/new": "new", "d/hard-y": "y0",
		"d/sym-y": "y2", "shared": "shared0", "shared-link": "shared0", "suid": "s",
	} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
	}
	for _, gone := range []string{"a/x", "b", "c/old", "c/olddir", "a/.wh.x", ".wh.b", "c/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s should have been deleted by a whiteout", gone)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "d/sym-y")); err != nil || l != "../a/y" {
		t.Errorf("symlink d/sym-y -> %q (%v), want ../a/y", l, err)
	}
	same := func(a, b string) bool {
		fa, err1 := os.Stat(filepath.Join(root, a))
		fb, err2 := os.Stat(filepath.Join(root, b))
		return err1 == nil && err2 == nil && os.SameFile(fa, fb)
	}
	if !same("d/hard-keep", "a/keep") || !same("shared", "shared-link") {
		t.Error("hard links across layers were not kept as links")
	}
	if same("d/hard-y", "a/y") {
		t.Error("d/hard-y must keep the content a/y had before a later layer replaced it")
	}
	fi, err := os.Stat(filepath.Join(root, "suid"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o750 {
		t.Errorf("suid mode %v, want setuid 0750", fi.Mode())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("suid owner %+v, want 7:8", fi.Sys())
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(root, "xattr"), "user.rkt", buf)
	if err != nil || string(buf[:n]) != "kept" {
		t.Errorf("xattr user.rkt = %q (%v), want kept", buf[:max(n, 0)], err)
	}
}

func TestDockerFetchPlainHTTP(t *testing.T) {
	reg := newDkRegistry(t, nil, "", "")
	for _, tc := range []struct {
		name string
		oci  bool
	}{{"docker-schema2", false}, {"oci", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDkEnv(t, nil)
			digest := reg.push("test/"+tc.name+":v1", layeredImage(t, tc.oci))
			byTag := "docker://" + reg.Host + "/test/" + tc.name + ":v1"
			byDigest := "docker://" + reg.Host + "/test/" + tc.name + "@" + digest

			e.mustRefuse("--insecure-options=image", "fetch", "--insecure-options=http", byTag)
			e.mustRefuse("--insecure-options=http", "fetch", "--insecure-options=image", byTag)
			e.mustRefuse("--insecure-options=http", "fetch", byDigest)

			id := e.mustRkt("--insecure-options=image,http", "fetch", "--full", byTag)
			checkRootfs(t, e.render(id))

			im := e.manifest(id)
			wantName := strings.Replace(reg.Host, ":", "_", 1) + "/test/" + tc.name
			if im.Name.String() != wantName {
				t.Errorf("name %q, want %q", im.Name, wantName)
			}
			if v, _ := im.Labels.Get("version"); v != "v1" {
				t.Errorf("version label %q, want v1", v)
			}
			if a, _ := im.Labels.Get("arch"); a != "amd64" {
				t.Errorf("arch label %q", a)
			}
			if im.App == nil || strings.Join(im.App.Exec, " ") != "/bin/server --port 80" {
				t.Fatalf("app %+v", im.App)
			}
			if im.App.User != "web" || im.App.Group != "44" || im.App.WorkingDirectory != "/srv" {
				t.Errorf("user %s group %s workdir %s", im.App.User, im.App.Group, im.App.WorkingDirectory)
			}
			if v, _ := im.App.Environment.Get("MODE"); v != "test" {
				t.Errorf("env MODE %q", v)
			}
			var ports []string
			for _, p := range im.App.Ports {
				ports = append(ports, p.Name.String())
			}
			if strings.Join(ports, ",") != "53-udp,80-tcp" {
				t.Errorf("ports %v", ports)
			}
			for k, v := range map[string]string{"org.example.team": "infra", "appc.io/docker/manifesthash": digest,
				"appc.io/docker/repository": "test/" + tc.name, "appc.io/docker/registryurl": reg.Host} {
				if got, _ := im.Annotations.Get(k); got != v {
					t.Errorf("annotation %s = %q, want %q", k, got, v)
				}
			}

			// Pulled by digest, the digest is the proof: no --insecure-options=image.
			did := e.mustRkt("--insecure-options=http", "fetch", "--full", byDigest)
			checkRootfs(t, e.render(did))

			// Deterministic: another store converts to the same image ID.
			e2 := newDkEnv(t, nil)
			if id2 := e2.mustRkt("--insecure-options=image,http", "fetch", "--full", byTag); id2 != id {
				t.Errorf("second conversion gave %s, first %s", id2, id)
			}
		})
	}
}

// TestDockerPullPolicy: a stored image is not pulled again under "new";
// "update" asks for the manifest's digest only; "never" uses the store.
func TestDockerPullPolicy(t *testing.T) {
	reg := newDkRegistry(t, nil, "", "")
	e := newDkEnv(t, nil)
	reg.push("pp/app:1", layeredImage(t, false))
	ref := "docker://" + reg.Host + "/pp/app:1"
	insecure := "--insecure-options=image,http"

	e.mustRefuse("pull policy is never", insecure, "fetch", "--pull-policy=never", ref)
	id := e.mustRkt(insecure, "fetch", "--full", ref)
	blobs := reg.count("GET", "/blobs/")
	manifests := reg.count("GET", "/manifests/")
	if blobs == 0 {
		t.Fatal("the registry served no blobs")
	}
	if got := e.mustRkt(insecure, "fetch", "--full", ref); got != id {
		t.Errorf("second fetch gave %s, want %s", got, id)
	}
	if got := e.mustRkt(insecure, "fetch", "--full", "--pull-policy=never", ref); got != id {
		t.Errorf("--pull-policy=never gave %s, want %s", got, id)
	}
	if reg.count("GET", "/manifests/") != manifests || reg.count("GET", "/blobs/") != blobs {
		t.Error("pull policy new/never went to the registry for a stored image")
	}
	if got := e.mustRkt(insecure, "fetch", "--full", "--pull-policy=update", ref); got != id {
		t.Errorf("--pull-policy=update of an unchanged tag gave %s, want %s", got, id)
	}
	if reg.count("GET", "/blobs/") != blobs {
		t.Error("--pull-policy=update downloaded an unchanged image again")
	}

	// The tag moves: update fetches the new image, new keeps the stored one.
	moved := layeredImage(t, false)
	moved, err := mutate.AppendLayers(moved, ot.Layer(false, ot.File("moved", "yes")))
	if err != nil {
		t.Fatal(err)
	}
	reg.push("pp/app:1", moved)
	if got := e.mustRkt(insecure, "fetch", "--full", ref); got != id {
		t.Errorf("pull policy new after the tag moved gave %s, want the stored %s", got, id)
	}
	newID := e.mustRkt(insecure, "fetch", "--full", "--pull-policy=update", ref)
	if newID == id {
		t.Fatal("--pull-policy=update kept the old image after the tag moved")
	}
	if b, err := os.ReadFile(filepath.Join(e.render(newID), "moved")); err != nil || string(b) != "yes" {
		t.Errorf("updated image lacks the new layer: %q %v", b, err)
	}
}

func TestDockerFetchTLS(t *testing.T) {
	ca := newDkCA(t)
	reg := newDkRegistry(t, ca, "", "")
	digest := reg.push("tls/app:1", layeredImage(t, true))
	ref := "docker://" + reg.Host + "/tls/app@" + digest

	// Not trusting the test CA, the registry's certificate is refused.
	untrusting := newDkEnv(t, nil)
	untrusting.mustRefuse("certificate", "fetch", ref)
	// --insecure-options=tls accepts it (and still checks the digest).
	untrusting.mustRkt("--insecure-options=tls", "fetch", ref)

	e := newDkEnv(t, ca)
	id := e.mustRkt("fetch", "--full", ref)
	checkRootfs(t, e.render(id))
	if v, ok := e.manifest(id).Labels.Get("version"); ok {
		t.Errorf("an image pulled by digest alone got version %q", v)
	}
	// A digest the registry cannot match is refused, and nothing stored.
	bad := "docker://" + reg.Host + "/tls/app@sha256:" + strings.Repeat("0", 64)
	e.mustRefuse("not found", "fetch", bad)
}

// TestDockerRegistryAuth: a registry answering 401 without credentials is
// refused in one line with nothing stored, and works with the dockerAuth
// credentials of auth.d.
func TestDockerRegistryAuth(t *testing.T) {
	ca := newDkCA(t)
	reg := newDkRegistry(t, ca, "alice", "s3cret")
	digest := reg.push("private/app:1", layeredImage(t, false))
	ref := "docker://" + reg.Host + "/private/app@" + digest
	e := newDkEnv(t, ca)

	e.mustRefuse("401 Unauthorized (no dockerAuth credentials for "+reg.Host+" in any auth.d)", "fetch", ref)

	authd := filepath.Join(e.LocalConfig, "auth.d")
	if err := os.MkdirAll(authd, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(pass string) {
		body := `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["` + reg.Host + `"],"credentials":{"user":"alice","password":"` + pass + `"}}`
		if err := os.WriteFile(filepath.Join(authd, "registry.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("wrong")
	e.mustRefuse("were refused", "fetch", ref)
	write("s3cret")
	id := e.mustRkt("fetch", "--full", ref)
	checkRootfs(t, e.render(id))
}

// TestDockerRegistryTokens: beyond rkt, dockerAuth credentials may be a
// registry token (sent as a bearer token) or an identity token (an OAuth2
// refresh token, exchanged at the registry's token service), as Docker's
// config.json and Kubernetes pull secrets carry them.
func TestDockerRegistryTokens(t *testing.T) {
	ca := newDkCA(t)
	reg := newDkTokenRegistry(t, ca, "bearer-7f3a", "refresh-91c2")
	digest := reg.push("private/app:1", layeredImage(t, false))
	ref := "docker://" + reg.Host + "/private/app@" + digest
	write := func(e *dkEnv, creds string) {
		t.Helper()
		authd := filepath.Join(e.LocalConfig, "auth.d")
		if err := os.MkdirAll(authd, 0o755); err != nil {
			t.Fatal(err)
		}
		body := `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["` + reg.Host + `"],"credentials":` + creds + `}`
		if err := os.WriteFile(filepath.Join(authd, "registry.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	e := newDkEnv(t, ca)
	e.mustRefuse("401 Unauthorized (no dockerAuth credentials for "+reg.Host+" in any auth.d)", "fetch", ref)
	write(e, `{"registryToken":"stale"}`)
	e.mustRefuse("were refused", "fetch", ref)
	write(e, `{"registryToken":"bearer-7f3a"}`)
	checkRootfs(t, e.render(e.mustRkt("fetch", "--full", ref)))
	if n := reg.count("POST", "/token"); n != 0 {
		t.Errorf("a registry token went to the token service (%d requests)", n)
	}

	e = newDkEnv(t, ca)
	write(e, `{"identityToken":"refresh-00"}`)
	e.mustRefuse("were refused", "fetch", ref)
	write(e, `{"identityToken":"refresh-91c2"}`)
	checkRootfs(t, e.render(e.mustRkt("fetch", "--full", ref)))
	if n := reg.count("POST", "/token"); n == 0 {
		t.Error("the identity token was not exchanged at the token service")
	}
}

// TestDockerMirror: a registry's mirror, configured in docker.d, serves
// the image while the registry itself is down; the image keeps the
// registry's name.
func TestDockerMirror(t *testing.T) {
	mirror := newDkRegistry(t, nil, "", "")
	mirror.push("library/app:2", layeredImage(t, false))
	// A port nothing listens on stands for the registry that is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	e := newDkEnv(t, nil)
	dockerd := filepath.Join(e.LocalConfig, "docker.d")
	if err := os.MkdirAll(dockerd, 0o755); err != nil {
		t.Fatal(err)
	}
	body := `{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["` + down + `"],"mirrors":["` + mirror.Host + `"]}`
	if err := os.WriteFile(filepath.Join(dockerd, "mirrors.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.mustRkt("--insecure-options=image,http", "fetch", "--full", "docker://"+down+"/library/app:2")
	if got, want := e.manifest(id).Name.String(), strings.Replace(down, ":", "_", 1)+"/library/app"; got != want {
		t.Errorf("name %q, want %q (the registry's, not the mirror's)", got, want)
	}
	checkRootfs(t, e.render(id))
	if mirror.count("GET", "/blobs/") == 0 {
		t.Error("the mirror served no blobs")
	}
}

// TestOCILayout: oci:PATH:TAG from an image layout directory, and
// oci:PATH@DIGEST without --insecure-options=image.
func TestOCILayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "myimage")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := layeredImage(t, true)
	other, err := mutate.AppendLayers(img, ot.Layer(true, ot.File("other", "1")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(other, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "2.0"})); err != nil {
		t.Fatal(err)
	}
	e := newDkEnv(t, nil)
	e.mustRefuse("--insecure-options=image", "fetch", "oci:"+dir+":1.0")
	e.mustRefuse("holds 2 images", "--insecure-options=image", "fetch", "oci:"+dir)
	e.mustRefuse(`no image tagged "3.0"`, "--insecure-options=image", "fetch", "oci:"+dir+":3.0")

	id := e.mustRkt("--insecure-options=image", "fetch", "--full", "oci:"+dir+":1.0")
	checkRootfs(t, e.render(id))
	im := e.manifest(id)
	if im.Name.String() != "myimage" {
		t.Errorf("name %q, want myimage", im.Name)
	}
	if v, _ := im.Labels.Get("version"); v != "1.0" {
		t.Errorf("version %q, want 1.0", v)
	}

	d, err := other.Digest()
	if err != nil {
		t.Fatal(err)
	}
	oid := e.mustRkt("fetch", "--full", "oci:"+dir+"@"+d.String())
	if b, err := os.ReadFile(filepath.Join(e.render(oid), "other")); err != nil || string(b) != "1" {
		t.Errorf("image by digest: other = %q, %v", b, err)
	}

	// Tamper with a layer blob: by digest, that is refused.
	layers, _ := other.Layers()
	ld, _ := layers[len(layers)-1].Digest()
	blob := filepath.Join(dir, "blobs", ld.Algorithm, ld.Hex)
	if err := os.Chmod(blob, 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(blob)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := newDkEnv(t, nil)
	e2.mustRefuse("does not match its digest", "fetch", "oci:"+dir+"@"+d.String())
}

// TestDockerRunFly runs a converted image with the fly stage1: the app
// gets the image's entrypoint+cmd, environment, working directory and
// user, its exit code passes through, and a second run does not pull again.
func TestDockerRunFly(t *testing.T) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is a host package of this project (make deps): %v", err)
	}
	reg := newDkRegistry(t, nil, "", "")
	img, err := ot.Image(false, v1.Config{
		Entrypoint: []string{"/bin/busybox", "sh", "-c"},
		Cmd:        []string{`cat msg; echo "$GREETING"; pwd; id -u; exit 3`},
		Env:        []string{"GREETING=hi there"},
		WorkingDir: "/etc",
		User:       "1000:1000",
	}, ot.Layer(false,
		ot.Dir("bin"), ot.Entry{Name: "bin/busybox", Body: string(bb), Mode: 0o755},
		ot.Dir("etc"), ot.File("etc/msg", "from a docker image\n"),
	), ot.Layer(true, ot.Symlink("bin/sh", "busybox")))
	if err != nil {
		t.Fatal(err)
	}
	reg.push("run/busybox:1", img)
	e := newDkEnv(t, nil)
	ref := "docker://" + reg.Host + "/run/busybox:1"
	run := func() {
		t.Helper()
		r := e.rkt("--insecure-options=image,http", "run", "--stage1-path="+testImage("stage1-fly.aci"), ref)
		if r.Code != 3 {
			t.Fatalf("run: exit %d, want the app's 3: %s", r.Code, r)
		}
		if want := "from a docker image\nhi there\n/etc\n1000\n"; !strings.HasPrefix(r.Stdout, want) {
			t.Errorf("run output %q, want %q", r.Stdout, want)
		}
	}
	run()
	blobs := reg.count("GET", "/blobs/")
	run()
	if got := reg.count("GET", "/blobs/"); got != blobs {
		t.Errorf("the second run pulled again (%d blob requests, then %d)", blobs, got)
	}
}

// TestDockerMultiPlatform: a tag naming an image index (as on Docker Hub)
// gives this machine's image; the index digest works as a proof too.
func TestDockerMultiPlatform(t *testing.T) {
	reg := newDkRegistry(t, nil, "", "")
	mk := func(arch, marker string) v1.Image {
		img, err := ot.Image(true, v1.Config{Cmd: []string{"/x"}}, ot.Layer(true, ot.File("arch", marker)))
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Architecture = arch
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, ggcrtypes.OCIImageIndex),
		mutate.IndexAddendum{Add: mk("arm64", "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: mk("amd64", "amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref, err := name.ParseReference(reg.Host+"/multi/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, reg.remoteOpts()...); err != nil {
		t.Fatal(err)
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	want, wantLabel := "amd64", "amd64"
	if runtime.GOARCH == "arm64" {
		want, wantLabel = "arm64", "aarch64"
	}
	e := newDkEnv(t, nil)
	for _, r := range []string{
		"--insecure-options=image,http fetch --full docker://" + reg.Host + "/multi/app:1",
		"--insecure-options=http fetch --full docker://" + reg.Host + "/multi/app@" + idxDigest.String(),
	} {
		id := e.mustRkt(strings.Fields(r)...)
		if b, err := os.ReadFile(filepath.Join(e.render(id), "arch")); err != nil || string(b) != want {
			t.Errorf("%s: got the %q image (%v), want %s", r, b, err, want)
		}
		if a, _ := e.manifest(id).Labels.Get("arch"); a != wantLabel {
			t.Errorf("%s: arch label %q, want %q", r, a, wantLabel)
		}
	}
}

// TestDockerBadImage: an image whose layer climbs out of the root, or
// links to a file it does not have, is refused in one line with nothing
// stored.
func TestDockerBadImage(t *testing.T) {
	reg := newDkRegistry(t, nil, "", "")
	e := newDkEnv(t, nil)
	for tag, c := range map[string]struct {
		want    string
		entries []ot.Entry
	}{
		"escape":   {"path leaves the root", []ot.Entry{ot.File("../../etc/evil", "x")}},
		"hardlink": {`target "nope" is not in the image`, []ot.Entry{ot.Hardlink("a", "nope")}},
	} {
		img, err := ot.Image(false, v1.Config{Cmd: []string{"/x"}}, ot.Layer(false, ot.File("ok", "1")), ot.Layer(false, c.entries...))
		if err != nil {
			t.Fatal(err)
		}
		reg.push("bad/app:"+tag, img)
		e.mustRefuse(c.want, "--insecure-options=image,http", "fetch", "docker://"+reg.Host+"/bad/app:"+tag)
	}
}
