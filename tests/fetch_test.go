package tests

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// TestFetchDiscoverySigned fetches images by name through meta discovery
// over HTTPS (test CA), each signed by a different kind of key: RSA and
// Ed25519 made by the OpenPGP library and by GnuPG.
func TestFetchDiscoverySigned(t *testing.T) {
	e := newFtEnv(t)
	signers := []ftSigner{libKey(t, "rsa", nil), libKey(t, "ed25519", nil), gpgKey(t, "rsa3072"), gpgKey(t, "ed25519")}
	for _, s := range signers {
		prefix := "127.0.0.1/" + s.name
		name := prefix + "/app"
		e.srv.discoveryPage(prefix, e.discoveryMeta(prefix))
		aci := ftImage{name: name, version: "1.0"}.build(t)
		e.publish(imagePath(name, "1.0"), aci, &s)
		e.trust(prefix, s)
		id := e.mustRkt("fetch", "--full", name+":1.0")
		if !strings.HasPrefix(id, "sha512-") || len(id) != len("sha512-")+128 {
			t.Fatalf("%s: fetch printed %q, want a full image ID", s.name, id)
		}
		// With the image stored, pull policy new answers from the store.
		before := e.srv.count(e.srv.gets, imagePath(name, "1.0"))
		if got := e.mustRkt("fetch", "--full", "--pull-policy=never", name+":1.0"); got != id {
			t.Fatalf("%s: store lookup gave %q, want %q", s.name, got, id)
		}
		if got := e.mustRkt("fetch", "--full", name+",version=1.0"); got != id {
			t.Fatalf("%s: second fetch gave %q, want %q", s.name, got, id)
		}
		if after := e.srv.count(e.srv.gets, imagePath(name, "1.0")); after != before {
			t.Fatalf("%s: pull policy new downloaded again", s.name)
		}
	}
	if n := e.blobs(); n != len(signers) {
		t.Fatalf("%d blobs, want %d", n, len(signers))
	}
}

// TestFetchRefusals: each way an image can fail to prove itself is refused
// with one line, and nothing is stored.
func TestFetchRefusals(t *testing.T) {
	e := newFtEnv(t)
	good := libKey(t, "ed25519", nil)
	stranger := libKey(t, "ed25519", nil)
	e.srv.discoveryPage("127.0.0.1/org", e.discoveryMeta("127.0.0.1/org"))
	e.srv.discoveryPage("127.0.0.1/other", e.discoveryMeta("127.0.0.1/other"))
	e.trust("127.0.0.1/org", good)
	e.trust("127.0.0.1/other", stranger)

	t.Run("unsigned", func(t *testing.T) {
		aci := ftImage{name: "127.0.0.1/org/unsigned", version: "1"}.build(t)
		e.publish(imagePath("127.0.0.1/org/unsigned", "1"), aci, nil)
		r := e.mustRefuse("not signed", "fetch", "127.0.0.1/org/unsigned:1")
		if !strings.Contains(r.Stderr, "--insecure-options=image") {
			t.Errorf("refusal does not say how to accept unsigned images: %s", r.Stderr)
		}
		// It is accepted when the user says so.
		e.mustRkt("--insecure-options=image", "fetch", "127.0.0.1/org/unsigned:1")
	})
	t.Run("untrusted-key", func(t *testing.T) {
		k := libKey(t, "rsa", nil)
		aci := ftImage{name: "127.0.0.1/org/untrusted", version: "1"}.build(t)
		e.publish(imagePath("127.0.0.1/org/untrusted", "1"), aci, &k)
		e.mustRefuse("not trusted", "fetch", "127.0.0.1/org/untrusted:1")
	})
	t.Run("other-prefix", func(t *testing.T) {
		// Signed by the key trusted for 127.0.0.1/other only.
		aci := ftImage{name: "127.0.0.1/org/elsewhere", version: "1"}.build(t)
		e.publish(imagePath("127.0.0.1/org/elsewhere", "1"), aci, &stranger)
		e.mustRefuse("trusted only for prefix \"127.0.0.1/other\"", "fetch", "127.0.0.1/org/elsewhere:1")
		// The same image by URL: the name in its manifest decides.
		e.mustRefuse("trusted only for prefix", "fetch", e.srv.URL(imagePath("127.0.0.1/org/elsewhere", "1")))
	})
	t.Run("prefix-is-path-wise", func(t *testing.T) {
		// A key for 127.0.0.1/org does not vouch for 127.0.0.1/organic.
		e.srv.discoveryPage("127.0.0.1/organic", e.discoveryMeta("127.0.0.1/organic"))
		aci := ftImage{name: "127.0.0.1/organic/app", version: "1"}.build(t)
		e.publish(imagePath("127.0.0.1/organic/app", "1"), aci, &good)
		e.mustRefuse("not trusted", "fetch", "127.0.0.1/organic/app:1")
	})
	t.Run("tampered", func(t *testing.T) {
		name := "127.0.0.1/org/tampered"
		aci := ftImage{name: name, version: "1"}.build(t)
		sig := good.sign(aci)
		evil := ftImage{name: name, version: "1", files: map[string][]byte{"hello": []byte("evil\n")}}.build(t)
		e.srv.put(imagePath(name, "1"), &ftFile{data: evil})
		e.srv.put(imagePath(name, "1")+".asc", &ftFile{data: sig})
		e.mustRefuse("signature does not match", "fetch", name+":1")
		// A signed image that names itself differently is refused too.
		liar := ftImage{name: "127.0.0.1/org/liar", version: "1"}.build(t)
		e.publish(imagePath(name, "2"), liar, &good)
		e.mustRefuse("not \"127.0.0.1/org/tampered\"", "fetch", name+":2")
		// Those refusals came from the store's hash of the image (the
		// Ed25519 key signs with SHA-256): a good image takes that path.
		e.publish(imagePath(name, "3"), aci, &good)
		r := e.rkt("", "--debug", "fetch", name+":3")
		if r.Code != 0 || !strings.Contains(r.Stderr, "SHA-256 computed by the store") {
			t.Fatalf("good SHA-256 signature, uncompressed: want success through the store's hash: %s", r)
		}
	})
	t.Run("tampered-sha512", func(t *testing.T) {
		// Signed with SHA-512, as GnuPG signs with an RSA key: the check of
		// an uncompressed image takes the store's hash for the image ID
		// instead of hashing it again, and must refuse just the same.
		ent, err := openpgp.NewEntity("Test sha512", "", "sha512@example.com",
			&packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
		if err != nil {
			t.Fatal(err)
		}
		k := signerOf(t, "lib-rsa-sha512", ent, &packet.Config{DefaultHash: crypto.SHA512})
		e.trust("127.0.0.1/org/sha512", k)
		name := "127.0.0.1/org/sha512"
		aci := ftImage{name: name, version: "1"}.build(t)
		evil := ftImage{name: name, version: "1", files: map[string][]byte{"hello": []byte("evil\n")}}.build(t)
		e.srv.put(imagePath(name, "1"), &ftFile{data: evil})
		e.srv.put(imagePath(name, "1")+".asc", &ftFile{data: k.sign(aci)})
		e.mustRefuse("signature does not match", "fetch", name+":1")
		// Compressed, the signature covers other bytes than the image ID.
		gz := compressWith(t, "gzip", evil)
		e.srv.put(imagePath(name, "2"), &ftFile{data: gz})
		e.srv.put(imagePath(name, "2")+".asc", &ftFile{data: k.sign(compressWith(t, "gzip", aci))})
		e.mustRefuse("signature does not match", "fetch", name+":2")

		e.publish(imagePath(name, "3"), aci, &k)
		r := e.rkt("", "--debug", "fetch", name+":3")
		if r.Code != 0 || !strings.Contains(r.Stderr, "one pass") {
			t.Fatalf("good SHA-512 signature, uncompressed: want success through the shared hash: %s", r)
		}
		// GnuPG signs with SHA-512 when asked, with an Ed25519 key too
		// (Documentation/fetching.md recommends it for uncompressed
		// images): the same single pass.
		gk := gpgKey(t, "ed25519", "--digest-algo", "SHA512")
		e.trust(name, gk)
		e.publish(imagePath(name, "5"), aci, &gk)
		if r := e.rkt("", "--debug", "fetch", name+":5"); r.Code != 0 || !strings.Contains(r.Stderr, "one pass") {
			t.Fatalf("GnuPG Ed25519 signature with --digest-algo SHA512: want success in one pass: %s", r)
		}
		e.publish(imagePath(name, "4"), compressWith(t, "gzip", aci), &k)
		r = e.rkt("", "--debug", "fetch", name+":4")
		if r.Code != 0 || strings.Contains(r.Stderr, "one pass") {
			t.Fatalf("good SHA-512 signature, gzip: want success, hashing the received bytes: %s", r)
		}
	})
	t.Run("bad-tls", func(t *testing.T) {
		bad := newFtServer(t, nil, false) // certificate not from the test CA
		aci := ftImage{name: "127.0.0.1/org/badtls", version: "1"}.build(t)
		bad.put("/badtls.aci", &ftFile{data: aci})
		bad.put("/badtls.aci.asc", &ftFile{data: good.sign(aci)})
		e.mustRefuse("certificate", "fetch", bad.URL("/badtls.aci"))
		// --insecure-options=tls relaxes exactly that.
		e.mustRkt("--insecure-options=tls", "fetch", bad.URL("/badtls.aci"))
	})
	t.Run("no-matching-template", func(t *testing.T) {
		e.srv.discoveryPage("127.0.0.1/flavored",
			fmt.Sprintf(`<meta name="ac-discovery" content="127.0.0.1/flavored %s/{name}-{flavor}.{ext}">`, e.srv.URL("")))
		e.mustRefuse("no discovery page offers an ac-discovery template", "fetch", "127.0.0.1/flavored/app:1")
	})
	t.Run("plain-http", func(t *testing.T) {
		plain := newFtServer(t, nil, true)
		aci := ftImage{name: "127.0.0.1/org/plain", version: "1"}.build(t)
		plain.put("/plain.aci", &ftFile{data: aci})
		plain.put("/plain.aci.asc", &ftFile{data: good.sign(aci)})
		e.mustRefuse("--insecure-options=http", "fetch", plain.URL("/plain.aci"))
		e.mustRkt("--insecure-options=http", "fetch", plain.URL("/plain.aci"))
	})
}

// TestFetchKeyLifetime: signatures by expired and by revoked keys are
// refused.
func TestFetchKeyLifetime(t *testing.T) {
	e := newFtEnv(t)
	e.srv.discoveryPage("127.0.0.1/org", e.discoveryMeta("127.0.0.1/org"))

	past := time.Now().Add(-72 * time.Hour)
	cfg := &packet.Config{Time: func() time.Time { return past }, KeyLifetimeSecs: 3600, Algorithm: packet.PubKeyAlgoEdDSA}
	old, err := openpgp.NewEntity("Expired", "", "expired@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	expired := signerOf(t, "expired", old, &packet.Config{Time: func() time.Time { return past.Add(time.Minute) }})
	e.trust("127.0.0.1/org", expired)
	aci := ftImage{name: "127.0.0.1/org/expired", version: "1"}.build(t)
	e.publish(imagePath("127.0.0.1/org/expired", "1"), aci, &expired)
	e.mustRefuse("expired", "fetch", "127.0.0.1/org/expired:1")

	ent, err := openpgp.NewEntity("Revoked", "", "revoked@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	before := signerOf(t, "revoked", ent, nil)
	aci = ftImage{name: "127.0.0.1/org/revoked", version: "1"}.build(t)
	e.publish(imagePath("127.0.0.1/org/revoked", "1"), aci, &before)
	if err := ent.RevokeKey(packet.KeyCompromised, "test", nil); err != nil {
		t.Fatal(err)
	}
	e.trust("127.0.0.1/org", signerOf(t, "revoked", ent, nil))
	e.mustRefuse("revoked", "fetch", "127.0.0.1/org/revoked:1")
}

// TestFetchAuth: a server that wants credentials answers 401 without
// them, and serves the image with basic or bearer credentials from auth.d.
func TestFetchAuth(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	aci := ftImage{name: "127.0.0.1/private/app", version: "1"}.build(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret"))
	e.srv.put("/private.aci", &ftFile{data: aci, auth: basic})
	e.srv.put("/private.aci.asc", &ftFile{data: k.sign(aci), auth: basic})
	e.mustRefuse("401", "fetch", e.srv.URL("/private.aci"))

	authd := filepath.Join(e.LocalConfig, "auth.d")
	if err := os.MkdirAll(authd, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(authd, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("wrong.json", `{"rktKind":"auth","rktVersion":"v1","domains":["127.0.0.1"],"type":"basic","credentials":{"user":"alice","password":"wrong"}}`)
	e.mustRefuse("were refused", "fetch", e.srv.URL("/private.aci"))
	write("wrong.json", `{"rktKind":"auth","rktVersion":"v1","domains":["127.0.0.1"],"type":"basic","credentials":{"user":"alice","password":"secret"}}`)
	id := e.mustRkt("fetch", e.srv.URL("/private.aci"))

	// Bearer tokens, from the user configuration, overriding local.
	aci2 := ftImage{name: "127.0.0.1/private/app", version: "2"}.build(t)
	e.srv.put("/token.aci", &ftFile{data: aci2, auth: "Bearer tok123"})
	e.srv.put("/token.aci.asc", &ftFile{data: k.sign(aci2), auth: "Bearer tok123"})
	userd := filepath.Join(e.UserConfig, "auth.d")
	if err := os.MkdirAll(userd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(userd, "t.json"), []byte(`{"rktKind":"auth","rktVersion":"v1","domains":["127.0.0.1"],"type":"oauth","credentials":{"token":"tok123"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	id2 := e.mustRkt("fetch", e.srv.URL("/token.aci"))
	if id == id2 {
		t.Fatal("two different images got one ID")
	}
}

// TestFetchCaching: ETag revalidation, Cache-Control max-age and the pull
// policies for an image fetched by URL.
func TestFetchCaching(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	aci := ftImage{name: "127.0.0.1/cache/app", version: "1"}.build(t)
	e.srv.put("/etag.aci", &ftFile{data: aci, etag: `"v1"`})
	e.srv.put("/etag.aci.asc", &ftFile{data: k.sign(aci)})
	u := e.srv.URL("/etag.aci")

	e.mustRefuse("not in the store", "fetch", "--pull-policy=never", u)
	id := e.mustRkt("fetch", "--pull-policy=update", u)
	if got := e.mustRkt("fetch", "--pull-policy=update", u); got != id {
		t.Fatalf("revalidated fetch gave %s, want %s", got, id)
	}
	if g, nm := e.srv.count(e.srv.gets, "/etag.aci"), e.srv.count(e.srv.notModified, "/etag.aci"); g != 1 || nm != 1 {
		t.Fatalf("after two update fetches: %d downloads, %d not-modified answers; want 1 and 1", g, nm)
	}
	// new and never do not ask the server.
	e.mustRkt("fetch", u)
	e.mustRkt("fetch", "--pull-policy=never", u)
	if g, nm := e.srv.count(e.srv.gets, "/etag.aci"), e.srv.count(e.srv.notModified, "/etag.aci"); g != 1 || nm != 1 {
		t.Fatalf("pull policy new/never talked to the server: %d downloads, %d 304s", g, nm)
	}
	// A changed image (new ETag) is downloaded again on update.
	aci2 := ftImage{name: "127.0.0.1/cache/app", version: "2"}.build(t)
	e.srv.put("/etag.aci", &ftFile{data: aci2, etag: `"v2"`})
	e.srv.put("/etag.aci.asc", &ftFile{data: k.sign(aci2)})
	if got := e.mustRkt("fetch", "--pull-policy=update", u); got == id {
		t.Fatal("changed image not downloaded on update")
	}

	// With max-age, update does not even ask while the copy is fresh.
	aci3 := ftImage{name: "127.0.0.1/cache/fresh", version: "1"}.build(t)
	e.srv.put("/fresh.aci", &ftFile{data: aci3, etag: `"f1"`, maxAge: 3600})
	e.srv.put("/fresh.aci.asc", &ftFile{data: k.sign(aci3)})
	e.mustRkt("fetch", "--pull-policy=update", e.srv.URL("/fresh.aci"))
	e.mustRkt("fetch", "--pull-policy=update", e.srv.URL("/fresh.aci"))
	if g, nm := e.srv.count(e.srv.gets, "/fresh.aci"), e.srv.count(e.srv.notModified, "/fresh.aci"); g != 1 || nm != 0 {
		t.Fatalf("fresh copy: %d downloads, %d revalidations; want 1 and 0", g, nm)
	}
}

// TestFetchResume: the server drops the connection in the middle of a
// large image; the download resumes where it stopped.
func TestFetchResume(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "rsa", nil)
	e.trust("", k)
	big := make([]byte, 24<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	aci := ftImage{name: "127.0.0.1/big/app", version: "1", files: map[string][]byte{"big": big}}.build(t)
	e.srv.put("/big.aci", &ftFile{data: aci, etag: `"big"`, cutAt: 10 << 20})
	e.srv.put("/big.aci.asc", &ftFile{data: k.sign(aci)})
	e.mustRkt("fetch", e.srv.URL("/big.aci"))
	if r := e.srv.count(e.srv.ranges, "/big.aci"); r != 1 {
		t.Fatalf("%d range requests, want 1 resume", r)
	}
	if g := e.srv.count(e.srv.gets, "/big.aci"); g != 1 {
		t.Fatalf("%d full downloads, want 1", g)
	}

	// Without ETag or Last-Modified the server cannot promise the rest
	// belongs to the same file: the fetch fails cleanly instead.
	aci2 := ftImage{name: "127.0.0.1/big/app", version: "2", files: map[string][]byte{"big": big[:4<<20]}}.build(t)
	e.srv.put("/cut.aci", &ftFile{data: aci2, cutAt: 1 << 20})
	e.srv.put("/cut.aci.asc", &ftFile{data: k.sign(aci2)})
	e.mustRefuse("does not support resuming", "fetch", e.srv.URL("/cut.aci"))
}

// TestFetchConcurrent: two rkt fetch of the same image at once both
// succeed with the same ID and the store holds one copy.
func TestFetchConcurrent(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	payload := make([]byte, 4<<20)
	_, _ = rand.Read(payload)
	aci := ftImage{name: "127.0.0.1/conc/app", version: "1", files: map[string][]byte{"data": payload}}.build(t)
	e.srv.put("/conc.aci", &ftFile{data: aci})
	e.srv.put("/conc.aci.asc", &ftFile{data: k.sign(aci)})
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := e.Cmd("fetch", "--full", e.srv.URL("/conc.aci"))
			cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+e.ca.pemPath)
			res[i] = e.RunCmd(cmd)
		}(i)
	}
	wg.Wait()
	for _, r := range res {
		if r.Code != 0 {
			t.Fatalf("concurrent fetch failed: %s", r)
		}
	}
	if res[0].Stdout != res[1].Stdout {
		t.Fatalf("concurrent fetches disagree: %q vs %q", res[0].Stdout, res[1].Stdout)
	}
	if n := e.blobs(); n != 1 {
		t.Fatalf("%d blobs, want 1", n)
	}
}

// TestFetchCompressed: gzip, bzip2, xz and zstd images made by the host
// tools, signed as compressed, all give the uncompressed image's ID.
func TestFetchCompressed(t *testing.T) {
	e := newFtEnv(t)
	k := gpgKey(t, "ed25519")
	e.trust("127.0.0.1/comp", k)
	aci := ftImage{name: "127.0.0.1/comp/app", version: "1"}.build(t)
	e.publish("/plain.aci", aci, &k)
	want := e.mustRkt("fetch", "--full", e.srv.URL("/plain.aci"))
	for _, tool := range []string{"gzip", "bzip2", "xz", "zstd"} {
		c := compressWith(t, tool, aci)
		path := "/" + tool + ".aci"
		e.publish(path, c, &k)
		if got := e.mustRkt("fetch", "--full", e.srv.URL(path)); got != want {
			t.Errorf("%s: ID %s, want %s", tool, got, want)
		}
		// A signature over the uncompressed bytes does not cover these.
		e.srv.put(path+".asc", &ftFile{data: k.sign(aci)})
		e.srv.put("/bad-"+tool+".aci", &ftFile{data: c})
		e.srv.put("/bad-"+tool+".aci.asc", &ftFile{data: k.sign(aci)})
		e.mustRefuse("signature does not match", "fetch", "--pull-policy=update", e.srv.URL("/bad-"+tool+".aci"))
	}
}

// TestFetchLocalFile: a local image with IMAGE.asc beside it or
// --signature, and refusals for both and for a missing image.
func TestFetchLocalFile(t *testing.T) {
	e := newFtEnv(t)
	k := gpgKey(t, "rsa3072")
	aci := ftImage{name: "127.0.0.1/local/app", version: "1"}.build(t)
	p := filepath.Join(e.root, "app.aci")
	if err := os.WriteFile(p, aci, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRefuse("not signed", "fetch", p)
	// A missing image is said to be missing, not to be unsigned.
	e.mustRefuse("open image: open "+p+".gone: no such file or directory", "fetch", p+".gone")
	sig := filepath.Join(e.root, "elsewhere.sig")
	if err := os.WriteFile(sig, k.sign(aci), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRefuse("not trusted", "fetch", "--signature="+sig, p)
	e.trust("127.0.0.1/local", k)
	id := e.mustRkt("fetch", "--signature="+sig, p)
	if err := os.WriteFile(p+".asc", k.sign(aci), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.mustRkt("fetch", "file://"+p); got != id {
		t.Fatalf("file:// fetch gave %s, want %s", got, id)
	}
	// A tampered local file.
	evil := ftImage{name: "127.0.0.1/local/app", version: "1", files: map[string][]byte{"hello": []byte("evil")}}.build(t)
	q := filepath.Join(e.root, "evil.aci")
	_ = os.WriteFile(q, evil, 0o644)
	e.mustRefuse("signature does not match", "fetch", "--signature="+sig, q)
}

// TestFetchRedirectsAndProgress: redirects are followed (never from HTTPS
// down to plain HTTP unless allowed); progress goes to a terminal only.
func TestFetchRedirectsAndProgress(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	aci := ftImage{name: "127.0.0.1/redir/app", version: "1"}.build(t)
	e.publish("/new.aci", aci, &k)
	e.srv.redirect("/old.aci", e.srv.URL("/new.aci"))
	e.srv.redirect("/old.aci.asc", e.srv.URL("/new.aci.asc"))
	r := e.rkt("", "fetch", e.srv.URL("/old.aci"))
	if r.Code != 0 {
		t.Fatalf("redirected fetch: %s", r)
	}
	if r.Stderr != "" {
		t.Errorf("fetch with stderr not a terminal printed: %q", r.Stderr)
	}

	plain := newFtServer(t, nil, true)
	aci2 := ftImage{name: "127.0.0.1/redir/app", version: "2"}.build(t)
	plain.put("/down.aci", &ftFile{data: aci2})
	plain.put("/down.aci.asc", &ftFile{data: k.sign(aci2)})
	e.srv.redirect("/down.aci", plain.URL("/down.aci"))
	e.srv.redirect("/down.aci.asc", plain.URL("/down.aci.asc"))
	e.mustRefuse("plain HTTP", "fetch", e.srv.URL("/down.aci"))

	// On a terminal (script gives rkt a pty) a progress line is drawn.
	payload := make([]byte, 2<<20)
	_, _ = rand.Read(payload)
	aci3 := ftImage{name: "127.0.0.1/redir/big", version: "1", files: map[string][]byte{"p": payload}}.build(t)
	e.publish("/big.aci", aci3, &k)
	cmd := e.Cmd("fetch", e.srv.URL("/big.aci"))
	line := strings.Join(append([]string{rktBin()}, cmd.Args[1:]...), " ")
	sc := e.Cmd()
	sc.Path, sc.Args = "/usr/bin/script", []string{"script", "-qec", line, "/dev/null"}
	sc.Env = append(sc.Env, "SSL_CERT_FILE="+e.ca.pemPath)
	r = e.RunCmd(sc)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Downloading") || !strings.Contains(r.Stdout, "sha512-") {
		t.Fatalf("fetch on a terminal: %s", r)
	}

	// A local image shows its import, signed or not; one already in the
	// store shows nothing.
	aci4 := ftImage{name: "127.0.0.1/local/big", version: "1", files: map[string][]byte{"p": payload[:1<<20]}}.build(t)
	local := filepath.Join(t.TempDir(), "big.aci")
	if err := os.WriteFile(local, aci4, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local+".asc", k.sign(aci4), 0o644); err != nil {
		t.Fatal(err)
	}
	onTerminal := func(args ...string) result {
		t.Helper()
		cmd := e.Cmd(args...)
		sc := e.Cmd()
		sc.Path, sc.Args = "/usr/bin/script", []string{"script", "-qec", strings.Join(append([]string{rktBin()}, cmd.Args[1:]...), " "), "/dev/null"}
		return e.RunCmd(sc)
	}
	for i, args := range [][]string{{"fetch", local}, {"fetch", "--insecure-options=image", local}} {
		if i == 1 {
			e.MustRun("image", "rm", "127.0.0.1/local/big:1")
		}
		if r := onTerminal(args...); r.Code != 0 || !strings.Contains(r.Stdout, "Importing big.aci") || !strings.Contains(r.Stdout, "1.0 MiB") {
			t.Fatalf("%v on a terminal: %s", args, r)
		}
	}
	if r := onTerminal("fetch", "--insecure-options=image", local); r.Code != 0 || strings.Contains(r.Stdout, "Importing") {
		t.Fatalf("fetch of a stored local image on a terminal: %s", r)
	}
}

// TestFetchDiscoveryPlainHTTP: discovery over plain HTTP needs
// --insecure-options=http; keys it offers over HTTP are trusted on the way
// only with --insecure-options=pubkey.
func TestFetchDiscoveryPlainHTTP(t *testing.T) {
	e := newFtEnv(t)
	e.srv = newFtServer(t, nil, true)
	k := libKey(t, "rsa", nil)
	e.srv.put("/keys/k.asc", &ftFile{data: k.public})
	e.srv.discoveryPage("127.0.0.1/plain", e.discoveryMeta("127.0.0.1/plain"),
		`<meta name="ac-discovery-pubkeys" content="127.0.0.1/plain `+e.srv.URL("/keys/k.asc")+`">`)
	aci := ftImage{name: "127.0.0.1/plain/app", version: "1"}.build(t)
	e.publish(imagePath("127.0.0.1/plain/app", "1"), aci, &k)

	e.mustRefuse("discovery found nothing", "fetch", "127.0.0.1/plain/app:1")
	e.mustRefuse("not trusted", "--insecure-options=http", "fetch", "127.0.0.1/plain/app:1")
	r := e.rkt("", "--insecure-options=http,pubkey", "fetch", "127.0.0.1/plain/app:1")
	if r.Code != 0 || !strings.Contains(r.Stderr, k.fp) {
		t.Fatalf("fetch with pubkey: %s", r)
	}
}

// TestFetchInterrupted: SIGINT in the middle of a download ends rkt with
// one line and leaves nothing in the store, not even a temporary file.
func TestFetchInterrupted(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	payload := make([]byte, 8<<20)
	_, _ = rand.Read(payload)
	aci := ftImage{name: "127.0.0.1/intr/app", version: "1", files: map[string][]byte{"p": payload}}.build(t)
	hold, started := make(chan struct{}), make(chan struct{})
	defer close(hold)
	e.srv.put("/slow.aci", &ftFile{data: aci, hold: hold, started: started})
	e.srv.put("/slow.aci.asc", &ftFile{data: k.sign(aci)})
	cmd := e.Cmd("fetch", e.srv.URL("/slow.aci"))
	cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+e.ca.pemPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("download never started")
	}
	// Give the store a moment to create its temporary file, so the check
	// below tests the cleanup rather than an early exit.
	time.Sleep(200 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if err == nil {
		t.Fatal("interrupted fetch succeeded")
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr: %q", stderr.String())
	}
	if n := e.blobs(); n != 0 {
		t.Errorf("%d blobs after an interrupted fetch", n)
	}
	e.noTemps()
}

// TestFetchCertDir: the CA can come from SSL_CERT_DIR as well.
func TestFetchCertDir(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	aci := ftImage{name: "127.0.0.1/certdir/app", version: "1"}.build(t)
	e.publish("/cd.aci", aci, &k)
	run := func(env ...string) result {
		cmd := e.Cmd("fetch", "--pull-policy=update", e.srv.URL("/cd.aci"))
		cmd.Env = append(cmd.Env, env...)
		return e.RunCmd(cmd)
	}
	certDir := filepath.Dir(e.ca.pemPath)
	if r := run("SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR="+certDir); r.Code != 0 {
		t.Fatalf("fetch with the CA in SSL_CERT_DIR: %s", r)
	}
	if r := run("SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR="+t.TempDir()); r.Code == 0 || !strings.Contains(r.Stderr, "certificate") {
		t.Fatalf("fetch without the CA: %s", r)
	}
	// A bundle that lacks the CA does not hide the directory that has it
	// (rkt verifies against the bundle first, then against both).
	other := newFtCA(t)
	if r := run("SSL_CERT_FILE="+other.pemPath, "SSL_CERT_DIR="+certDir); r.Code != 0 {
		t.Fatalf("fetch with the CA in SSL_CERT_DIR and another in SSL_CERT_FILE: %s", r)
	}
	if r := run("SSL_CERT_FILE="+other.pemPath, "SSL_CERT_DIR="+t.TempDir()); r.Code == 0 || !strings.Contains(r.Stderr, "certificate signed by unknown authority") {
		t.Fatalf("fetch with neither holding the CA: %s", r)
	}
}
