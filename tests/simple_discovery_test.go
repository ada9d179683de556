package tests

// Simple discovery (appc spec before 0.8): an image published at
// https://{name}-{version}-{os}-{arch}.aci with no discovery page is
// still found by name, its signature checked against the trust store.

import (
	"fmt"
	"strings"
	"testing"
)

// simplePath is where simple discovery looks for name:version on the
// test server (the name's host is the server).
func simplePath(name, version string) string {
	return fmt.Sprintf("/%s-%s-linux-amd64.aci", strings.TrimPrefix(name, "127.0.0.1/"), version)
}

func TestSimpleDiscovery(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	other := libKey(t, "ed25519", nil)
	e.trust("127.0.0.1/simple", k)
	e.trust("127.0.0.1/elsewhere", other)

	name := "127.0.0.1/simple/app"
	aci := ftImage{name: name, version: "1.0"}.build(t)
	e.publish(simplePath(name, "1.0"), aci, &k)

	t.Run("signed", func(t *testing.T) {
		id := e.mustRkt("fetch", "--full", name+":1.0")
		if got := e.srv.count(e.srv.gets, simplePath(name, "1.0")); got != 1 {
			t.Errorf("the image at the simple discovery URL was downloaded %d times, want 1", got)
		}
		if m := e.mustRkt("image", "cat-manifest", "--pretty-print=false", id); !strings.Contains(m, `"name":"`+name+`"`) {
			t.Errorf("fetched another image: %s", m)
		}
	})

	t.Run("latest", func(t *testing.T) {
		// Without a version, simple discovery asks for "latest".
		latest := ftImage{name: name, version: "latest"}.build(t)
		e.publish(simplePath(name, "latest"), latest, &k)
		e.mustRkt("fetch", "--pull-policy=update", name)
		if e.srv.count(e.srv.gets, simplePath(name, "latest")) != 1 {
			t.Error("a fetch without a version did not download the latest image")
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		n := "127.0.0.1/simple/unsigned"
		e.publish(simplePath(n, "1"), ftImage{name: n, version: "1"}.build(t), nil)
		e.mustRefuse("not signed", "fetch", n+":1")
		e.mustRkt("--insecure-options=image", "fetch", n+":1")
	})

	t.Run("other-prefix-key", func(t *testing.T) {
		n := "127.0.0.1/simple/foreign"
		e.publish(simplePath(n, "1"), ftImage{name: n, version: "1"}.build(t), &other)
		e.mustRefuse("trusted only for prefix", "fetch", n+":1")
	})

	t.Run("absent", func(t *testing.T) {
		r := e.mustRefuse("simple discovery: "+e.srv.URL(simplePath("127.0.0.1/simple/nothing", "1"))+": not found",
			"fetch", "127.0.0.1/simple/nothing:1")
		if !strings.Contains(r.Stderr, "no discovery page offers") {
			t.Errorf("the refusal does not say meta discovery found nothing first: %s", r.Stderr)
		}
	})

	t.Run("meta-wins", func(t *testing.T) {
		// A name served by a discovery page never costs a simple
		// discovery request, even when both would find an image.
		n := "127.0.0.1/both/app"
		e.srv.discoveryPage("127.0.0.1/both", e.discoveryMeta("127.0.0.1/both"))
		e.trust("127.0.0.1/both", k)
		e.publish(imagePath(n, "1"), ftImage{name: n, version: "1"}.build(t), &k)
		e.publish(simplePath(n, "1"), ftImage{name: n, version: "1"}.build(t), &k)
		e.mustRkt("fetch", n+":1")
		if e.srv.count(e.srv.gets, imagePath(n, "1")) != 1 || e.srv.count(e.srv.gets, simplePath(n, "1")) != 0 {
			t.Errorf("meta discovery's image fetched %d times, simple's %d: want 1 and 0",
				e.srv.count(e.srv.gets, imagePath(n, "1")), e.srv.count(e.srv.gets, simplePath(n, "1")))
		}
	})
}
