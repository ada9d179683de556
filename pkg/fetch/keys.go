package fetch

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/rktng/rkt/discovery"
	"github.com/rktng/rkt/pkg/keystore"
)

// FetchedKey is a public key read from somewhere, not yet trusted.
type FetchedKey struct {
	Location string
	// Secure: fetched over HTTPS with a verified certificate, or from a
	// local file.
	Secure bool
	Entity *openpgp.Entity
}

// Fingerprint is the key's fingerprint, lower-case hex.
func (k FetchedKey) Fingerprint() string { return keystore.Fingerprint(k.Entity) }

// FetchKey reads a public key from a file path, file:// URL or http(s)
// URL (plain HTTP only with InsecureAllowHTTP).
func (f *Fetcher) FetchKey(ctx context.Context, location string) (FetchedKey, error) {
	var data []byte
	secure := true
	switch {
	case strings.HasPrefix(location, "https://"), strings.HasPrefix(location, "http://"):
		u, err := url.Parse(location)
		if err != nil {
			return FetchedKey{}, fmt.Errorf("key URL %q: %v", location, err)
		}
		secure = u.Scheme == "https" && !f.cfg.InsecureSkipTLSVerify
		var found bool
		data, found, err = f.getSmall(ctx, location)
		if err != nil {
			return FetchedKey{}, fmt.Errorf("fetch key: %w", err)
		}
		if !found {
			return FetchedKey{}, fmt.Errorf("fetch key %s: not found", location)
		}
	default:
		var err error
		data, err = os.ReadFile(strings.TrimPrefix(location, "file://"))
		if err != nil {
			return FetchedKey{}, fmt.Errorf("read key: %w", err)
		}
	}
	e, err := keystore.ParseKey(data)
	if err != nil {
		return FetchedKey{}, fmt.Errorf("key %s: %w", location, err)
	}
	return FetchedKey{Location: location, Secure: secure, Entity: e}, nil
}

// DiscoverKeys finds the public keys that meta discovery (ac-discovery-
// pubkeys) offers for prefix and reads them.
func (f *Fetcher) DiscoverKeys(ctx context.Context, prefix string) ([]FetchedKey, error) {
	urls, err := discovery.DiscoverKeys(ctx, f.discoveryConfig(), prefix)
	if err != nil {
		return nil, err
	}
	var keys []FetchedKey
	for _, u := range urls {
		k, err := f.FetchKey(ctx, u)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// maybeTrustKeys, with --trust-keys-from-https (or the pubkey insecure
// option), trusts the keys discovery offers for name when no trusted key
// made sig yet. It returns how many keys it stored.
func (f *Fetcher) maybeTrustKeys(ctx context.Context, name string, sig []byte) (int, error) {
	if !f.cfg.TrustKeysFromHTTPS && !f.cfg.InsecureSkipPubKey {
		return 0, nil
	}
	if v, err := f.cfg.Keystore.NewVerifier(name, sig); err == nil {
		v.Abort(errStop)
		return 0, nil
	}
	keys, err := f.DiscoverKeys(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("--trust-keys-from-https: %w", err)
	}
	var skipped []string
	stored := 0
	for _, k := range keys {
		if !k.Secure && !f.cfg.InsecureSkipPubKey {
			skipped = append(skipped, fmt.Sprintf("%s from %s", k.Fingerprint(), k.Location))
			continue
		}
		st, err := f.cfg.Keystore.Store(name, k.Entity)
		if err != nil {
			return stored, err
		}
		f.logf("Trusting key %s (%s) for prefix %q, fetched from %s", st.Fingerprint, strings.Join(st.UserIDs, ", "), name, k.Location)
		stored++
	}
	if stored == 0 && len(skipped) > 0 {
		return 0, fmt.Errorf("%s: %w: the discovered keys were not fetched over verified HTTPS, so --trust-keys-from-https does not trust them (%s)", name, keystore.ErrUntrusted, strings.Join(skipped, "; "))
	}
	return stored, nil
}

type stopError struct{}

func (stopError) Error() string { return "stopped" }

var errStop error = stopError{}

func (f *Fetcher) logf(format string, args ...any) {
	if f.cfg.Log != nil {
		fmt.Fprintf(f.cfg.Log, format+"\n", args...)
	}
}
