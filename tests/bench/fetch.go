package main

// Fetch figures: rkt fetch of a signed ~100 MB uncompressed ACI from an
// HTTPS server in this process (signature check and store import
// included), beside curl downloading the same file from the same server to
// a file. rkt asks for HTTP/1.1 (see pkg/fetch/http.go), curl negotiates
// HTTP/2; both share the machine's two cores with the server. rkt does
// strictly more: SHA-512 for the image ID over every byte, the tar check,
// an fsync'd blob and index, and the signature's hash. Signed with SHA-512
// (what GnuPG uses with an RSA key) that hash is the image ID's own; signed
// with SHA-256 (GnuPG's choice for an Ed25519 key) it is a second pass.

import (
	"archive/tar"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/rktng/rkt/pkg/keystore"
)

func init() {
	addFigure(figure{name: "fetch: 100 MB ACI over HTTPS, RSA signature, SHA-512 (verify + import)", order: 400,
		goal: "within 1.3x of curl",
		run:  func(b *bench) (sample, sample, error) { return fetchFigure(b, sigRSASHA512) }})
	addFigure(figure{name: "fetch: same, Ed25519 signature, SHA-256", order: 401,
		goal: "within 1.3x of curl",
		run:  func(b *bench) (sample, sample, error) { return fetchFigure(b, sigEd25519) }})
	addFigure(figure{name: "fetch: same, --insecure-options=image (import only)", order: 402,
		run: func(b *bench) (sample, sample, error) { return fetchFigure(b, sigNone) }})
}

// How the fetched image is signed.
const (
	sigNone = iota
	sigRSASHA512
	sigEd25519
)

func fetchFigure(b *bench, signing int) (sample, sample, error) {
	verify := signing != sigNone
	if _, err := exec.LookPath("curl"); err != nil {
		return sample{}, sample{}, fmt.Errorf("curl not installed")
	}
	dir, err := os.MkdirTemp(b.work, "fetch-")
	if err != nil {
		return sample{}, sample{}, err
	}
	aci, err := fetchBenchACI(100 << 20)
	if err != nil {
		return sample{}, sample{}, err
	}
	keyCfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	sigCfg := &packet.Config{DefaultHash: crypto.SHA256}
	if signing == sigRSASHA512 {
		keyCfg = &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 3072}
		sigCfg = &packet.Config{DefaultHash: crypto.SHA512}
	}
	key, err := openpgp.NewEntity("Bench", "", "bench@example.com", keyCfg)
	if err != nil {
		return sample{}, sample{}, err
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, key, bytes.NewReader(aci), sigCfg); err != nil {
		return sample{}, sample{}, err
	}
	local := filepath.Join(dir, "local")
	if _, err := keystore.New("", local).Store("", key); err != nil {
		return sample{}, sample{}, err
	}
	caPath, cert, err := fetchBenchCA(dir)
	if err != nil {
		return sample{}, sample{}, err
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bench.aci":
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(aci))
		case "/bench.aci.asc":
			_, _ = w.Write(sig.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sample{}, sample{}, err
	}
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	url := "https://" + ln.Addr().String() + "/bench.aci"
	env := append(os.Environ(), "SSL_CERT_FILE="+caPath)

	// All the runs the bench asks for (20 by default): on a shared VM a
	// median of 10 moved by 10% from one bench to the next.
	runs := b.runs
	storeDir := filepath.Join(dir, "data")
	curlOut := filepath.Join(dir, "curl.aci")
	var wantOut []byte
	global := []string{"--dir=" + storeDir, "--local-config=" + local,
		"--system-config=" + filepath.Join(dir, "system"), "--user-config=" + filepath.Join(dir, "user")}
	fetch := func() error {
		args := append(append([]string{}, global...), "fetch", "--pull-policy=update", url)
		if !verify {
			args = append([]string{"--insecure-options=image"}, args...)
		}
		cmd := exec.Command(b.rkt(), args...)
		cmd.Env = env
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("rkt fetch: %v: %s", err, errb.String())
		}
		if wantOut != nil && !bytes.Equal(out, wantOut) {
			return fmt.Errorf("rkt fetch printed %q, then %q", wantOut, out)
		}
		wantOut = out
		return nil
	}
	curl := func() error {
		cmd := exec.Command("curl", "-sSf", "--cacert", caPath, "-o", curlOut, url)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("curl: %v: %s", err, out)
		}
		return nil
	}
	// rkt fetches into a store that exists, as a user's does: the image
	// is removed between runs (creating a store costs about 3 ms, most of
	// it the index's first fsyncs).
	unfetch := func() error {
		if wantOut == nil {
			return os.RemoveAll(storeDir)
		}
		args := append(append([]string{}, global...), "image", "rm", string(bytes.TrimSpace(wantOut)))
		if out, err := exec.Command(b.rkt(), args...).CombinedOutput(); err != nil {
			return fmt.Errorf("rkt image rm: %v: %s", err, out)
		}
		return nil
	}
	// Runs alternate between rkt and curl so that both see the same load
	// on a shared machine; removing the previous result is not timed. The
	// server is in this process: the garbage of building the image (and of
	// the figure before) is collected first, not during the runs.
	runtime.GC()
	var oursD, refD []time.Duration
	for i := 0; i < runs; i++ {
		for _, step := range []struct {
			clean func() error
			fn    func() error
			into  *[]time.Duration
		}{{unfetch, fetch, &oursD}, {func() error { return os.RemoveAll(curlOut) }, curl, &refD}} {
			if err := step.clean(); err != nil {
				return sample{}, sample{}, err
			}
			start := time.Now()
			if err := step.fn(); err != nil {
				return sample{}, sample{}, err
			}
			*step.into = append(*step.into, time.Since(start))
		}
	}
	ours, ref := medianOf(oursD), medianOf(refD)
	return sample{label: "rkt fetch", value: ours}, sample{label: "curl -o FILE", value: ref}, nil
}

func medianOf(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// fetchBenchACI builds an uncompressed ACI of about size bytes of random data.
func fetchBenchACI(size int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(size + 1<<20)
	tw := tar.NewWriter(&buf)
	manifest := []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"bench.example.com/big","labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}]}`)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime = time.Unix(1500000000, 0)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg}, manifest); err != nil {
		return nil, err
	}
	if err := add(&tar.Header{Name: "rootfs/", Mode: 0o755, Typeflag: tar.TypeDir}, nil); err != nil {
		return nil, err
	}
	chunk := make([]byte, 10<<20)
	for i := 0; i < size/len(chunk); i++ {
		if _, err := rand.Read(chunk); err != nil {
			return nil, err
		}
		if err := add(&tar.Header{Name: fmt.Sprintf("rootfs/blob%02d", i), Mode: 0o644, Size: int64(len(chunk)), Typeflag: tar.TypeReg}, chunk); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fetchBenchCA writes a CA certificate to dir and returns a server certificate
// for 127.0.0.1 that it signed.
func fetchBenchCA(dir string) (string, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	p := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return "", tls.Certificate{}, err
	}
	return p, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
