// Package keystore owns the trusted OpenPGP keys under the system and local
// configuration directories (trustedkeys/root.d and trustedkeys/prefix.d)
// and the check of a detached signature against the keys that may vouch for
// an image name.
package keystore

import (
	"bytes"
	"crypto"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/appc/spec/schema/types"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrUntrusted: the signature was made by a key not trusted for the name.
	ErrUntrusted = errors.New("signature made by a key that is not trusted")
	// ErrBadSignature: the signature does not match the data (tampered
	// image or wrong signature file).
	ErrBadSignature = errors.New("signature does not match the image")
	// ErrKeyExpired: the signing key (or the signature) has expired.
	ErrKeyExpired = errors.New("signing key has expired")
	// ErrKeyRevoked: the signing key has been revoked.
	ErrKeyRevoked = errors.New("signing key has been revoked")
	// ErrNotFound: no trusted key has the given fingerprint.
	ErrNotFound = errors.New("no such trusted key")
	// ErrInvalidKey: the data is not one armored OpenPGP public key.
	ErrInvalidKey = errors.New("invalid public key")
)

const (
	trustedKeysDir = "trustedkeys"
	rootDir        = "root.d"
	prefixDir      = "prefix.d"
)

// Keystore reads keys from the system configuration directory and from the
// local one, which overrides it (a file of the same fingerprint in the same
// place wins). Keys are only ever written to, and removed from, the local
// directory: the system one belongs to the distribution.
type Keystore struct {
	SystemConfig string
	LocalConfig  string
}

// New returns the keystore of these configuration directories.
func New(systemConfig, localConfig string) *Keystore {
	return &Keystore{SystemConfig: systemConfig, LocalConfig: localConfig}
}

// Key is one trusted key file.
type Key struct {
	// Fingerprint is the primary key's fingerprint, lower-case hex.
	Fingerprint string `json:"fingerprint"`
	// Prefix is the name prefix the key vouches for; "" for a root key.
	Prefix string `json:"prefix"`
	// Root keys vouch for every name.
	Root bool `json:"root"`
	// Origin is "local" or "system".
	Origin string `json:"origin"`
	Path   string `json:"path"`
	// UserIDs are the key's identities, for humans.
	UserIDs []string        `json:"userIDs,omitempty"`
	Entity  *openpgp.Entity `json:"-"`
}

// Fingerprint is the lower-case hex fingerprint of e's primary key.
func Fingerprint(e *openpgp.Entity) string {
	return fmt.Sprintf("%x", e.PrimaryKey.Fingerprint)
}

// ParseKey reads exactly one OpenPGP public key, armored or binary.
func ParseKey(data []byte) (*openpgp.Entity, error) {
	var el openpgp.EntityList
	var err error
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%w: want exactly one key, found %d", ErrInvalidKey, len(el))
	}
	return el[0], nil
}

// ArmorPublic serializes the public part of e, armored. Secret material a
// user might have handed us is never written to the trust store.
func ArmorPublic(e *openpgp.Entity) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// UserIDs lists e's identities, sorted.
func UserIDs(e *openpgp.Entity) []string {
	var ids []string
	for n := range e.Identities {
		ids = append(ids, n)
	}
	sort.Strings(ids)
	return ids
}

// cleanPrefix checks that prefix is an appc name (or "" for root) so that it
// can never climb out of prefix.d.
func cleanPrefix(prefix string) (string, error) {
	if prefix == "" {
		return "", nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if _, err := types.NewACIdentifier(p); err != nil {
		return "", fmt.Errorf("prefix %q: not a valid image name prefix: %v", prefix, err)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." || part == "" {
			return "", fmt.Errorf("prefix %q: not a valid image name prefix", prefix)
		}
	}
	return p, nil
}

func (ks *Keystore) dirFor(base, prefix string) string {
	if prefix == "" {
		return filepath.Join(base, trustedKeysDir, rootDir)
	}
	return filepath.Join(base, trustedKeysDir, prefixDir, filepath.FromSlash(prefix))
}

// Store writes e as a key trusted for prefix ("" for a root key) into the
// local configuration and returns the stored key.
func (ks *Keystore) Store(prefix string, e *openpgp.Entity) (Key, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return Key{}, err
	}
	if ks.LocalConfig == "" {
		return Key{}, errors.New("store key: no local configuration directory")
	}
	data, err := ArmorPublic(e)
	if err != nil {
		return Key{}, fmt.Errorf("store key: %w", err)
	}
	dir := ks.dirFor(ks.LocalConfig, p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Key{}, fmt.Errorf("store key: %w", err)
	}
	fp := Fingerprint(e)
	path := filepath.Join(dir, fp)
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return Key{}, fmt.Errorf("store key %s: %w", fp, err)
	}
	return Key{Fingerprint: fp, Prefix: p, Root: p == "", Origin: "local", Path: path, UserIDs: UserIDs(e), Entity: e}, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// List returns every trusted key, local ones overriding system ones with
// the same fingerprint in the same place, sorted by prefix then fingerprint.
func (ks *Keystore) List() ([]Key, error) {
	byPlace := map[string]Key{}
	for _, src := range []struct{ base, origin string }{{ks.SystemConfig, "system"}, {ks.LocalConfig, "local"}} {
		if src.base == "" {
			continue
		}
		keys, err := readTree(filepath.Join(src.base, trustedKeysDir), src.origin)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			byPlace[k.Prefix+"\x00"+k.Fingerprint] = k
		}
	}
	out := make([]Key, 0, len(byPlace))
	for _, k := range byPlace {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Prefix != out[j].Prefix {
			return out[i].Prefix < out[j].Prefix
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out, nil
}

// readTree reads root.d and every directory below prefix.d of one
// trustedkeys directory.
func readTree(dir, origin string) ([]Key, error) {
	var keys []Key
	read := func(path, prefix string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("trusted key %s: %w", path, err)
		}
		e, err := ParseKey(data)
		if err != nil {
			return fmt.Errorf("trusted key %s: %w", path, err)
		}
		keys = append(keys, Key{Fingerprint: Fingerprint(e), Prefix: prefix, Root: prefix == "",
			Origin: origin, Path: path, UserIDs: UserIDs(e), Entity: e})
		return nil
	}
	root := filepath.Join(dir, rootDir)
	ents, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trusted keys: %w", err)
	}
	for _, ent := range ents {
		if ent.Type().IsRegular() && !strings.HasPrefix(ent.Name(), ".") {
			if err := read(filepath.Join(root, ent.Name()), ""); err != nil {
				return nil, err
			}
		}
	}
	pdir := filepath.Join(dir, prefixDir)
	err = filepath.WalkDir(pdir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == pdir {
				return filepath.SkipDir
			}
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(pdir, filepath.Dir(path))
		if err != nil || rel == "." {
			// A file directly in prefix.d has no prefix: not a key.
			return nil
		}
		return read(path, filepath.ToSlash(rel))
	})
	if err != nil {
		return nil, fmt.Errorf("trusted keys: %w", err)
	}
	return keys, nil
}

// Remove deletes every local key file with this fingerprint (a unique
// prefix of at least 8 hex digits is enough) and returns what it removed.
// Keys that only the system configuration holds cannot be removed here.
func (ks *Keystore) Remove(fingerprint string) ([]Key, error) {
	fp := strings.ToLower(strings.ReplaceAll(fingerprint, " ", ""))
	if len(fp) < 8 {
		return nil, fmt.Errorf("key %q: give at least 8 hex digits of the fingerprint", fingerprint)
	}
	all, err := ks.List()
	if err != nil {
		return nil, err
	}
	var removed []Key
	systemOnly := false
	for _, k := range all {
		if !strings.HasPrefix(k.Fingerprint, fp) {
			continue
		}
		if k.Origin != "local" {
			systemOnly = true
			continue
		}
		if err := os.Remove(k.Path); err != nil {
			return removed, fmt.Errorf("remove key %s: %w", k.Fingerprint, err)
		}
		removed = append(removed, k)
	}
	if len(removed) == 0 {
		if systemOnly {
			return nil, fmt.Errorf("key %s is trusted by the system configuration %s; it cannot be removed from the local one", fingerprint, ks.SystemConfig)
		}
		return nil, fmt.Errorf("key %s: %w", fingerprint, ErrNotFound)
	}
	return removed, nil
}

// vouches tells whether a key trusted for prefix may sign name: root keys
// sign anything, a prefix key signs the prefix itself and names below it,
// path component by component (example.com/a never covers example.com/ab).
func vouches(prefix, name string) bool {
	return prefix == "" || name == prefix || strings.HasPrefix(name, prefix+"/")
}

// KeysFor returns the trusted keys that may vouch for name.
func (ks *Keystore) KeysFor(name string) ([]Key, error) {
	all, err := ks.List()
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range all {
		if vouches(k.Prefix, name) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Signer is who signed an image.
type Signer struct {
	Fingerprint string
	UserIDs     []string
}

// Verifier checks a detached signature while the signed data streams
// through it, so the data never has to be read twice. Writes are copied
// into large buffers and hashed on another goroutine, so that hashing runs
// beside whatever produces the data (a TLS connection, say).
type Verifier struct {
	name string
	ch   chan []byte
	free chan []byte
	cur  []byte
	done chan verifyResult
	// abortErr is set before ch is closed by Abort.
	abortErr error
	closed   bool

	// What FinishShared needs: the signature's first packet, and the
	// keys and signature to check again from the data if the library
	// does not take the shared state.
	sig        *packet.Signature
	ring       openpgp.EntityList
	armoredSig []byte
	// state is set, before ch is closed, by FinishShared.
	state   []byte
	written bool
	made    int // buffers made so far
}

// errStateRefused: the signature check did not start from a fresh hash of
// the shared algorithm, so it could not take over a state computed
// elsewhere (a salted or non-binary signature, or a library that hashes
// differently). FinishShared then reads the data again.
var errStateRefused = errors.New("signature hash cannot take a shared state")

const (
	verifyBufSize = 1 << 20
	verifyBufs    = 4
)

type verifyResult struct {
	signer *openpgp.Entity
	err    error
}

// chanReader hands the Verifier's buffers to the signature check.
type chanReader struct {
	v   *Verifier
	cur []byte
	buf []byte
}

func (r *chanReader) next() bool {
	if r.buf != nil {
		r.v.free <- r.buf[:0]
		r.buf = nil
	}
	b, ok := <-r.v.ch
	if !ok {
		return false
	}
	r.buf, r.cur = b, b
	return true
}

func (r *chanReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if !r.next() {
			return 0, r.end()
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo lets io.Copy hash whole buffers without copying them again.
// After FinishShared it instead sets the signature's hash (w, fresh from
// the library) to the state computed elsewhere.
func (r *chanReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.cur) > 0 {
			n, err := w.Write(r.cur)
			total += int64(n)
			r.cur = r.cur[n:]
			if err != nil {
				return total, err
			}
		}
		if !r.next() {
			// ch is closed: state, set before that, can be read.
			if total == 0 && r.v.state != nil {
				return 0, adoptState(w, r.v.state, r.v.sig.Hash)
			}
			err := r.end()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
	}
}

func (r *chanReader) end() error {
	if r.v.abortErr != nil {
		return r.v.abortErr
	}
	if r.v.state != nil {
		// Only WriteTo can hand over a shared state.
		return errStateRefused
	}
	return io.EOF
}

// adoptState sets w, the hash the library will finish the signature check
// with, to state. It insists that w is exactly a fresh hash of algorithm h,
// so that nothing the library wrote first (a salt) is lost; otherwise the
// caller hashes the data itself.
func adoptState(w io.Writer, state []byte, h crypto.Hash) error {
	hw, ok := w.(interface {
		encoding.BinaryMarshaler
		encoding.BinaryUnmarshaler
	})
	if !ok || !h.Available() {
		return errStateRefused
	}
	fresh, ok := h.New().(encoding.BinaryMarshaler)
	if !ok {
		return errStateRefused
	}
	want, err1 := fresh.MarshalBinary()
	got, err2 := hw.MarshalBinary()
	if err1 != nil || err2 != nil || !bytes.Equal(want, got) {
		return errStateRefused
	}
	if err := hw.UnmarshalBinary(state); err != nil {
		return errStateRefused
	}
	return nil
}

// drain keeps buffers flowing back to the writer after the check ended.
func (r *chanReader) drain() {
	if r.buf != nil {
		r.v.free <- r.buf[:0]
		r.buf = nil
	}
	for b := range r.v.ch {
		r.v.free <- b[:0]
	}
}

// NewVerifier prepares the check of armoredSig (a detached, armored
// signature) for an image called name. It fails at once, before any data
// is read, when no key trusted for name made the signature. With name ""
// (the name is not known until the image has been read) every trusted key
// is a candidate, and the caller must call Vouches with the image's name
// before accepting it.
func (ks *Keystore) NewVerifier(name string, armoredSig []byte) (*Verifier, error) {
	t, err := ks.Trusted()
	if err != nil {
		return nil, err
	}
	return t.NewVerifier(name, armoredSig)
}

// Trusted is the set of trusted keys as read at one moment. Reading and
// parsing the keys takes milliseconds; a fetch reads them once, while its
// first requests are on the wire, and checks the signature and the name
// against that set.
type Trusted struct {
	keys []Key
}

// Trusted reads every trusted key.
func (ks *Keystore) Trusted() (*Trusted, error) {
	keys, err := ks.List()
	if err != nil {
		return nil, err
	}
	return &Trusted{keys: keys}, nil
}

// NewVerifier is Keystore.NewVerifier with these keys.
func (t *Trusted) NewVerifier(name string, armoredSig []byte) (*Verifier, error) {
	sig, err := firstSignature(armoredSig)
	if err != nil {
		return nil, err
	}
	issuer := *sig.IssuerKeyId
	var ring openpgp.EntityList
	var others []Key
	for _, k := range t.keys {
		if name == "" || vouches(k.Prefix, name) {
			ring = append(ring, k.Entity)
		} else {
			others = append(others, k)
		}
	}
	if len(ring.KeysByIdUsage(issuer, packet.KeyFlagSign)) == 0 {
		for _, k := range others {
			if len(openpgp.EntityList{k.Entity}.KeysByIdUsage(issuer, packet.KeyFlagSign)) > 0 {
				return nil, fmt.Errorf("%w: key %s is trusted only for prefix %q, not for %s", ErrUntrusted, k.Fingerprint, k.Prefix, name)
			}
		}
		what := name
		if what == "" {
			what = "any image"
		}
		return nil, fmt.Errorf("%w: no key trusted for %s has ID %016X (see rkt trust)", ErrUntrusted, what, issuer)
	}
	v := &Verifier{name: name, ch: make(chan []byte, verifyBufs), free: make(chan []byte, verifyBufs+1),
		done: make(chan verifyResult, 1), sig: sig, ring: ring, armoredSig: armoredSig}
	go func() {
		r := &chanReader{v: v}
		signer, err := checkDetached(ring, r, armoredSig)
		r.drain()
		v.done <- verifyResult{signer, err}
	}()
	return v, nil
}

func checkDetached(ring openpgp.EntityList, signed io.Reader, armoredSig []byte) (*openpgp.Entity, error) {
	block, err := armor.Decode(bytes.NewReader(armoredSig))
	if err != nil {
		return nil, err
	}
	return openpgp.CheckDetachedSignature(ring, signed, block.Body, nil)
}

// SharedHash tells which hash the signature was made with when a caller
// that computes that hash over the same bytes anyway may skip Write and end
// with FinishShared: for a version 4 signature of binary data (no salt, no
// line-ending rewrite). The store's SHA-512 for the image ID of an
// uncompressed image is such a hash when the signature used SHA-512, as
// GnuPG's does with an RSA key.
func (v *Verifier) SharedHash() (crypto.Hash, bool) {
	if v.sig.Version != 4 || v.sig.SigType != packet.SigTypeBinary {
		return 0, false
	}
	return v.sig.Hash, true
}

// FinishShared is Finish for a check whose data was never written: state is
// the marshaled (encoding.BinaryMarshaler) state of a SharedHash hash over
// exactly the signed data, not finalised. Should the OpenPGP library not
// take the state, the data is read again from reread and hashed here.
func (v *Verifier) FinishShared(state []byte, reread func() (io.ReadCloser, error)) (Signer, error) {
	if v.closed {
		return Signer{}, errors.New("signature check already ended")
	}
	if v.written {
		v.Abort(errors.New("data written before a shared finish"))
		return Signer{}, errors.New("signature check: data was written, the shared state would skip it")
	}
	v.state = state
	v.closed = true
	close(v.ch)
	r := <-v.done
	if errors.Is(r.err, errStateRefused) {
		rc, err := reread()
		if err != nil {
			return Signer{}, fmt.Errorf("check signature: %w", err)
		}
		defer rc.Close()
		r.signer, r.err = checkDetached(v.ring, rc, v.armoredSig)
	}
	if r.err != nil {
		return Signer{}, classify(v.name, r.err)
	}
	return Signer{Fingerprint: Fingerprint(r.signer), UserIDs: UserIDs(r.signer)}, nil
}

// Write feeds signed data to the check.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.closed {
		return 0, errors.New("write after the signature check ended")
	}
	n := len(p)
	v.written = v.written || n > 0
	for len(p) > 0 {
		if v.cur == nil {
			v.cur = v.buffer()
		}
		m := copy(v.cur[len(v.cur):cap(v.cur)], p)
		v.cur = v.cur[:len(v.cur)+m]
		p = p[m:]
		if len(v.cur) == cap(v.cur) {
			v.ch <- v.cur
			v.cur = nil
		}
	}
	return n, nil
}

// buffer returns a free buffer, making one while fewer than verifyBufs
// exist: a check finished from a shared state (FinishShared) never needs
// any, and 4 MiB made up front cost a millisecond before the first byte.
func (v *Verifier) buffer() []byte {
	if v.made < verifyBufs {
		select {
		case b := <-v.free:
			return b
		default:
			v.made++
			return make([]byte, 0, verifyBufSize)
		}
	}
	return <-v.free
}

// Abort stops the check; Finish must not be called after it.
func (v *Verifier) Abort(err error) {
	if v.closed {
		return
	}
	v.closed = true
	v.abortErr = err
	close(v.ch)
	<-v.done
}

// Finish ends the data and returns the signer, or why the signature is
// refused.
func (v *Verifier) Finish() (Signer, error) {
	if v.closed {
		return Signer{}, errors.New("signature check already ended")
	}
	v.closed = true
	if len(v.cur) > 0 {
		v.ch <- v.cur
	}
	close(v.ch)
	r := <-v.done
	if r.err != nil {
		return Signer{}, classify(v.name, r.err)
	}
	return Signer{Fingerprint: Fingerprint(r.signer), UserIDs: UserIDs(r.signer)}, nil
}

func classify(name string, err error) error {
	var sentinel error
	switch {
	case errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrSignatureExpired):
		sentinel = ErrKeyExpired
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		sentinel = ErrKeyRevoked
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		sentinel = ErrUntrusted
	}
	var se pgperrors.SignatureError
	var out error
	switch {
	case sentinel != nil:
		out = sentinel
	case errors.As(err, &se):
		out = fmt.Errorf("%w (%v)", ErrBadSignature, err)
	default:
		out = fmt.Errorf("check signature: %w", err)
	}
	if name != "" {
		return fmt.Errorf("%s: %w", name, out)
	}
	return out
}

// Vouches checks that a key with fingerprint fp is trusted for name.
func (ks *Keystore) Vouches(fp, name string) error {
	t, err := ks.Trusted()
	if err != nil {
		return err
	}
	return t.Vouches(fp, name)
}

// Vouches is Keystore.Vouches with these keys.
func (t *Trusted) Vouches(fp, name string) error {
	var prefixes []string
	for _, k := range t.keys {
		if k.Fingerprint != fp {
			continue
		}
		if vouches(k.Prefix, name) {
			return nil
		}
		prefixes = append(prefixes, fmt.Sprintf("%q", k.Prefix))
	}
	if len(prefixes) > 0 {
		return fmt.Errorf("%w: key %s is trusted only for prefix %s, not for %s", ErrUntrusted, fp, strings.Join(prefixes, ", "), name)
	}
	return fmt.Errorf("%w: key %s is not trusted for %s", ErrUntrusted, fp, name)
}

// Verify checks armoredSig over all of signed.
func (ks *Keystore) Verify(name string, signed io.Reader, armoredSig []byte) (Signer, error) {
	v, err := ks.NewVerifier(name, armoredSig)
	if err != nil {
		return Signer{}, err
	}
	if _, err := io.Copy(v, signed); err != nil {
		v.Abort(err)
		return Signer{}, fmt.Errorf("%s: read signed data: %w", name, err)
	}
	return v.Finish()
}

// firstSignature returns the first signature packet, which has an issuer.
func firstSignature(armoredSig []byte) (*packet.Signature, error) {
	block, err := armor.Decode(bytes.NewReader(armoredSig))
	if err != nil {
		return nil, fmt.Errorf("%w: not an armored OpenPGP signature: %v", ErrBadSignature, err)
	}
	if block.Type != openpgp.SignatureType {
		return nil, fmt.Errorf("%w: armored block is %q, not a signature", ErrBadSignature, block.Type)
	}
	p, err := packet.NewReader(block.Body).Next()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	sig, ok := p.(*packet.Signature)
	if !ok || sig.IssuerKeyId == nil {
		return nil, fmt.Errorf("%w: no issuer in signature", ErrBadSignature)
	}
	return sig, nil
}

// Expired tells whether e's primary key has expired or been revoked at t,
// for showing the state of keys to users.
func Expired(e *openpgp.Entity, t time.Time) (expired, revoked bool) {
	sig, _ := e.PrimarySelfSignature()
	return sig != nil && e.PrimaryKey.KeyExpired(sig, t), e.Revoked(t)
}
