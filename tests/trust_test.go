package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrustDiscovered: rkt trust --prefix finds the prefix's keys by meta
// discovery, shows each fingerprint and stores it only on "y".
func TestTrustDiscovered(t *testing.T) {
	e := newFtEnv(t)
	k := gpgKey(t, "ed25519")
	e.srv.put("/keys/org.asc", &ftFile{data: k.public})
	e.srv.discoveryPage("127.0.0.1/org", e.discoveryMeta("127.0.0.1/org"),
		`<meta name="ac-discovery-pubkeys" content="127.0.0.1/org `+e.srv.URL("/keys/org.asc")+`">`)
	keyFile := filepath.Join(e.LocalConfig, "trustedkeys", "prefix.d", "127.0.0.1", "org", k.fp)

	r := e.rkt("n\n", "trust", "--prefix=127.0.0.1/org")
	if r.Code == 0 {
		t.Fatalf("declined key reported success: %s", r)
	}
	grouped := strings.ToUpper(k.fp[:4] + " " + k.fp[4:8])
	if !strings.Contains(r.Stderr, grouped) || !strings.Contains(r.Stderr, "[y/N]") {
		t.Fatalf("review does not show the fingerprint and ask: %s", r)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Fatal("declined key was stored")
	}
	// Anything but y/yes (including no answer at all) declines.
	if r := e.rkt("", "trust", "--prefix=127.0.0.1/org"); r.Code == 0 {
		t.Fatalf("no answer trusted the key: %s", r)
	}

	r = e.rkt("y\n", "trust", "--prefix=127.0.0.1/org")
	if r.Code != 0 || !strings.Contains(r.Stdout, k.fp) {
		t.Fatalf("trust: %s", r)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("trusted key not stored at %s: %v", keyFile, err)
	}
	// The key now vouches for images under the prefix.
	aci := ftImage{name: "127.0.0.1/org/app", version: "1"}.build(t)
	e.publish(imagePath("127.0.0.1/org/app", "1"), aci, &k)
	e.mustRkt("fetch", "127.0.0.1/org/app:1")
}

// TestTrustListRemove: --root with a key URL, --list (table and JSON),
// local keys overriding system ones, and --remove.
func TestTrustListRemove(t *testing.T) {
	e := newFtEnv(t)
	root := libKey(t, "rsa", nil)
	sys := libKey(t, "ed25519", nil)
	e.srv.put("/root.asc", &ftFile{data: root.public})
	e.mustRkt("trust", "--root", "--skip-fingerprint-review", e.srv.URL("/root.asc"))

	// A key the distribution put in the system configuration.
	sysDir := filepath.Join(e.SystemConfig, "trustedkeys", "prefix.d", "127.0.0.1", "sys")
	if err := os.MkdirAll(sysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sysDir, sys.fp), sys.public, 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.mustRkt("trust", "--list", "--format=json")
	var keys []struct {
		Fingerprint, Prefix, Origin string
		Root                        bool
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("--list --format=json: %v: %s", err, out)
	}
	if len(keys) != 2 {
		t.Fatalf("listed %d keys, want 2: %s", len(keys), out)
	}
	for _, k := range keys {
		switch k.Fingerprint {
		case root.fp:
			if !k.Root || k.Origin != "local" {
				t.Errorf("root key listed as %+v", k)
			}
		case sys.fp:
			if k.Prefix != "127.0.0.1/sys" || k.Origin != "system" {
				t.Errorf("system key listed as %+v", k)
			}
		default:
			t.Errorf("unexpected key %+v", k)
		}
	}
	table := e.mustRkt("trust", "--list")
	if !strings.Contains(table, "FINGERPRINT") || !strings.Contains(table, root.fp) || !strings.Contains(table, "(root)") {
		t.Fatalf("--list table:\n%s", table)
	}

	// The system key vouches for its prefix.
	aci := ftImage{name: "127.0.0.1/sys/app", version: "1"}.build(t)
	e.publish("/sys.aci", aci, &sys)
	e.mustRkt("fetch", e.srv.URL("/sys.aci"))
	// A system key cannot be removed through the local configuration.
	if r := e.rkt("", "trust", "--remove", sys.fp); r.Code == 0 || !strings.Contains(r.Stderr, "system") {
		t.Fatalf("removing a system-only key: %s", r)
	}
	// The same key trusted locally for another prefix: --remove takes the
	// local copy and leaves the system's.
	e.trust("127.0.0.1/more", sys)
	if out := e.mustRkt("trust", "--remove", sys.fp); !strings.Contains(out, "127.0.0.1/more") || strings.Contains(out, "127.0.0.1/sys") {
		t.Fatalf("--remove of a local copy: %s", out)
	}
	if out := e.mustRkt("trust", "--list", "--format=json"); !strings.Contains(out, sys.fp) {
		t.Fatalf("system key gone after removing its local copy: %s", out)
	}
	e.mustRkt("trust", "--remove", root.fp[:16])
	out = e.mustRkt("trust", "--list", "--format=json")
	if strings.Contains(out, root.fp) {
		t.Fatalf("removed key still listed: %s", out)
	}
	// With the root key gone, an image it signed is refused.
	aci2 := ftImage{name: "127.0.0.1/any/app", version: "1"}.build(t)
	e.publish("/any.aci", aci2, &root)
	e.mustRefuse("not trusted", "fetch", e.srv.URL("/any.aci"))
	if r := e.rkt("", "trust", "--remove", "deadbeefdeadbeef"); r.Code == 0 {
		t.Fatalf("removing an unknown key succeeded: %s", r)
	}
}

// TestTrustKeysFromHTTPS: with --trust-keys-from-https a fetch by name
// trusts the keys that discovery serves over HTTPS; without it, it is
// refused; keys offered over plain HTTP are never trusted this way.
func TestTrustKeysFromHTTPS(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.srv.put("/keys/auto.asc", &ftFile{data: k.public})
	e.srv.discoveryPage("127.0.0.1/auto", e.discoveryMeta("127.0.0.1/auto"),
		`<meta name="ac-discovery-pubkeys" content="127.0.0.1/auto `+e.srv.URL("/keys/auto.asc")+`">`)
	aci := ftImage{name: "127.0.0.1/auto/app", version: "1"}.build(t)
	e.publish(imagePath("127.0.0.1/auto/app", "1"), aci, &k)

	e.mustRefuse("not trusted", "fetch", "127.0.0.1/auto/app:1")
	r := e.rkt("", "--trust-keys-from-https", "fetch", "127.0.0.1/auto/app:1")
	if r.Code != 0 {
		t.Fatalf("fetch with --trust-keys-from-https: %s", r)
	}
	if !strings.Contains(r.Stderr, k.fp) {
		t.Errorf("trusting a key on the way was not reported: %s", r.Stderr)
	}
	out := e.mustRkt("trust", "--list", "--format=json")
	if !strings.Contains(out, k.fp) || !strings.Contains(out, "127.0.0.1/auto/app") {
		t.Fatalf("key not stored for the image's name: %s", out)
	}

	// Keys served over plain HTTP are not trusted by --trust-keys-from-https.
	plain := newFtServer(t, nil, true)
	k2 := libKey(t, "ed25519", nil)
	plain.put("/k2.asc", &ftFile{data: k2.public})
	e.srv.discoveryPage("127.0.0.1/plainkeys", e.discoveryMeta("127.0.0.1/plainkeys"),
		`<meta name="ac-discovery-pubkeys" content="127.0.0.1/plainkeys `+plain.URL("/k2.asc")+`">`)
	aci2 := ftImage{name: "127.0.0.1/plainkeys/app", version: "1"}.build(t)
	e.publish(imagePath("127.0.0.1/plainkeys/app", "1"), aci2, &k2)
	e.mustRefuse("not trusted", "--trust-keys-from-https", "--insecure-options=http", "fetch", "127.0.0.1/plainkeys/app:1")
}
