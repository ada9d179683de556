package keystore

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func newKey(t *testing.T, algo packet.PublicKeyAlgorithm, cfg *packet.Config) *openpgp.Entity {
	t.Helper()
	if cfg == nil {
		cfg = &packet.Config{}
	}
	cfg.Algorithm = algo
	if algo == packet.PubKeyAlgoRSA {
		cfg.RSABits = 2048
	}
	e, err := openpgp.NewEntity("Test", "", "test@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func sign(t *testing.T, e *openpgp.Entity, data []byte, cfg *packet.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	ks := New(filepath.Join(dir, "system"), filepath.Join(dir, "local"))
	data := []byte("an image")
	rsaKey := newKey(t, packet.PubKeyAlgoRSA, nil)
	edKey := newKey(t, packet.PubKeyAlgoEdDSA, nil)
	other := newKey(t, packet.PubKeyAlgoEdDSA, nil)

	if _, err := ks.Verify("example.com/a", bytes.NewReader(data), sign(t, rsaKey, data, nil)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("empty keystore: got %v, want ErrUntrusted", err)
	}
	if _, err := ks.Store("example.com/a", rsaKey); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Store("example.com/b", other); err != nil {
		t.Fatal(err)
	}
	s, err := ks.Verify("example.com/a/x", bytes.NewReader(data), sign(t, rsaKey, data, nil))
	if err != nil || s.Fingerprint != Fingerprint(rsaKey) {
		t.Fatalf("RSA: %v %v", s, err)
	}
	if _, err := ks.Verify("example.com/ab", bytes.NewReader(data), sign(t, rsaKey, data, nil)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("prefix is not a string prefix: %v", err)
	}
	if _, err := ks.Verify("example.com/b", bytes.NewReader(data), sign(t, rsaKey, data, nil)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("other prefix: %v", err)
	}
	if _, err := ks.Verify("example.com/a", bytes.NewReader([]byte("tampered")), sign(t, rsaKey, data, nil)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
	// Ed25519 as a root key held by the system configuration.
	sys := New(filepath.Join(dir, "local"), filepath.Join(dir, "system"))
	if _, err := sys.Store("", edKey); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify("anything.org/x", bytes.NewReader(data), sign(t, edKey, data, nil)); err != nil {
		t.Fatalf("root Ed25519: %v", err)
	}
	if _, err := ks.Remove(Fingerprint(edKey)); err == nil {
		t.Fatal("removed a system key through the local configuration")
	}
	keys, err := ks.List()
	if err != nil || len(keys) != 3 {
		t.Fatalf("list: %v %v", keys, err)
	}
	if _, err := ks.Remove(Fingerprint(rsaKey)[:10]); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify("example.com/a", bytes.NewReader(data), sign(t, rsaKey, data, nil)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("removed key still trusted: %v", err)
	}
}

func TestExpiredAndRevoked(t *testing.T) {
	dir := t.TempDir()
	ks := New("", dir)
	data := []byte("an image")
	past := time.Now().Add(-48 * time.Hour)
	cfg := &packet.Config{Time: func() time.Time { return past }, KeyLifetimeSecs: 3600}
	expired := newKey(t, packet.PubKeyAlgoEdDSA, cfg)
	if _, err := ks.Store("example.com", expired); err != nil {
		t.Fatal(err)
	}
	sig := sign(t, expired, data, &packet.Config{Time: func() time.Time { return past.Add(time.Minute) }})
	if _, err := ks.Verify("example.com/app", bytes.NewReader(data), sig); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("expired: %v", err)
	}

	revoked := newKey(t, packet.PubKeyAlgoEdDSA, nil)
	sig = sign(t, revoked, data, nil)
	if err := revoked.RevokeKey(packet.KeyCompromised, "test", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Store("example.com", revoked); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify("example.com/app", bytes.NewReader(data), sig); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	// The stored file carries only public material.
	b, _ := os.ReadFile(filepath.Join(dir, "trustedkeys", "prefix.d", "example.com", Fingerprint(revoked)))
	if bytes.Contains(b, []byte("PRIVATE")) || !bytes.Contains(b, []byte("PUBLIC KEY")) {
		t.Fatalf("stored key file:\n%s", b)
	}
}

// sha512State is the marshaled, unfinished SHA-512 state over data, as the
// store has it for an image ID.
func sha512State(t *testing.T, data []byte) []byte {
	t.Helper()
	h := sha512.New()
	h.Write(data)
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFinishShared(t *testing.T) {
	dir := t.TempDir()
	ks := New(filepath.Join(dir, "system"), filepath.Join(dir, "local"))
	rsaKey := newKey(t, packet.PubKeyAlgoRSA, nil)
	if _, err := ks.Store("example.com", rsaKey); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("an image "), 100000)
	sig := sign(t, rsaKey, data, &packet.Config{DefaultHash: crypto.SHA512})
	rereads := 0
	reread := func(b []byte) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			rereads++
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	finish := func(state []byte, again []byte) (Signer, error) {
		t.Helper()
		v, err := ks.NewVerifier("example.com/a", sig)
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := v.SharedHash(); !ok || h != crypto.SHA512 {
			t.Fatalf("SharedHash = %v, %v; want SHA-512", h, ok)
		}
		return v.FinishShared(state, reread(again))
	}

	s, err := finish(sha512State(t, data), nil)
	if err != nil || s.Fingerprint != Fingerprint(rsaKey) || rereads != 0 {
		t.Fatalf("shared state of the signed data: %v %v (%d rereads)", s, err, rereads)
	}
	tampered := append([]byte{}, data...)
	tampered[5000] ^= 1
	if _, err := finish(sha512State(t, tampered), nil); !errors.Is(err, ErrBadSignature) || rereads != 0 {
		t.Fatalf("shared state of tampered data: %v (%d rereads)", err, rereads)
	}
	// A state the signature's hash cannot take (another algorithm's) makes
	// the check read the data again, and judge what it reads.
	h256 := sha256.New()
	h256.Write(data)
	wrong, _ := h256.(encoding.BinaryMarshaler).MarshalBinary()
	if s, err := finish(wrong, data); err != nil || s.Fingerprint != Fingerprint(rsaKey) || rereads != 1 {
		t.Fatalf("refused state, good data: %v %v (%d rereads)", s, err, rereads)
	}
	if _, err := finish(wrong, tampered); !errors.Is(err, ErrBadSignature) || rereads != 2 {
		t.Fatalf("refused state, tampered data: %v (%d rereads)", err, rereads)
	}

	// Data written first cannot be finished with a state.
	v, err := ks.NewVerifier("example.com/a", sig)
	if err != nil {
		t.Fatal(err)
	}
	v.Write(data[:10])
	if _, err := v.FinishShared(sha512State(t, data), reread(data)); err == nil {
		t.Fatal("FinishShared after Write succeeded")
	}
}
