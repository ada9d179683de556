package tests

// Fetching by appc name with --label, running an image by a name only
// discovery can find, and HTTP through a proxy named in the environment.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fnBusyboxImage is an ACI named name:version whose app prints say with
// the host's static busybox.
func fnBusyboxImage(t *testing.T, name, version, say string) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is a host package of this project (make deps): %v", err)
	}
	manifest, _ := json.Marshal(map[string]any{
		"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name,
		"labels": []map[string]string{{"name": "version", "value": version}, {"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}},
		"app":    map[string]any{"exec": []string{"/bin/busybox", "echo", say}, "user": "0", "group": "0"},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1500000000, 0)
	for _, h := range []struct {
		hdr  tar.Header
		body []byte
	}{
		{tar.Header{Name: "manifest", Mode: 0o644, Typeflag: tar.TypeReg}, manifest},
		{tar.Header{Name: "rootfs/", Mode: 0o755, Typeflag: tar.TypeDir}, nil},
		{tar.Header{Name: "rootfs/bin/", Mode: 0o755, Typeflag: tar.TypeDir}, nil},
		{tar.Header{Name: "rootfs/bin/busybox", Mode: 0o755, Typeflag: tar.TypeReg}, bb},
	} {
		h.hdr.Size, h.hdr.ModTime = int64(len(h.body)), mt
		if err := tw.WriteHeader(&h.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(h.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFetchNameLabelsAndRun: `rkt fetch NAME --label=...` picks the
// version the labels ask for, a malformed label is one line, and `rkt run`
// takes the same names, discovering an image not yet in the store.
func TestFetchNameLabelsAndRun(t *testing.T) {
	e := newFtEnv(t)
	k := libKey(t, "ed25519", nil)
	prefix := "127.0.0.1/names"
	name := prefix + "/app"
	e.srv.discoveryPage(prefix, e.discoveryMeta(prefix))
	e.trust(prefix, k)
	for _, v := range []string{"1.0", "2.0"} {
		e.publish(imagePath(name, v), fnBusyboxImage(t, name, v, "running "+v), &k)
	}

	id := e.mustRkt("fetch", "--full", name, "--label=version=2.0")
	if m := e.mustRkt("image", "cat-manifest", "--pretty-print=false", id); !strings.Contains(m, `"value":"2.0"`) {
		t.Fatalf("--label=version=2.0 fetched another image: %s", m)
	}
	if e.srv.count(e.srv.gets, imagePath(name, "1.0")) != 0 {
		t.Error("--label=version=2.0 downloaded version 1.0")
	}
	e.mustRefuse("NAME=VALUE", "fetch", name, "--label=version")

	// Version 1.0 is not in the store: run discovers, verifies and runs it.
	r := e.rkt("", "run", "--stage1-path="+testImage("stage1-fly.aci"), name+":1.0")
	if r.Code != 0 || !strings.Contains(r.Stdout, "running 1.0") {
		t.Fatalf("run by name: %s", r)
	}
	if n := e.srv.count(e.srv.gets, imagePath(name, "1.0")); n != 1 {
		t.Errorf("run downloaded version 1.0 %d times, want 1", n)
	}
	// An unsigned image under the prefix is refused by run as by fetch.
	e.publish(imagePath(name, "3.0"), fnBusyboxImage(t, name, "3.0", "unsigned"), nil)
	r = e.rkt("", "run", "--stage1-path="+testImage("stage1-fly.aci"), name+":3.0")
	if r.Code == 0 || !strings.Contains(r.Stderr, "not signed") || strings.Contains(r.Stdout, "unsigned") {
		t.Fatalf("run of an unsigned image: %s", r)
	}
}

// TestFetchThroughProxy: HTTP_PROXY from the environment carries the
// image and signature requests (to a host name only the proxy can reach).
func TestFetchThroughProxy(t *testing.T) {
	e := newFtEnv(t)
	e.srv = newFtServer(t, nil, true)
	k := libKey(t, "ed25519", nil)
	e.trust("", k)
	aci := ftImage{name: "127.0.0.1/proxied/app", version: "1"}.build(t)
	e.publish("/p.aci", aci, &k)

	origin, _ := url.Parse(e.srv.URL(""))
	var proxied atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(origin)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host != "images.rkt.invalid" {
			http.Error(w, "unexpected host "+r.URL.Host, http.StatusBadGateway)
			return
		}
		proxied.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	u := "http://images.rkt.invalid/p.aci"
	run := func(env ...string) result {
		cmd := e.Cmd("--insecure-options=http", "fetch", "--full", u)
		cmd.Env = append(cmd.Env, env...)
		return e.RunCmd(cmd)
	}
	if r := run("HTTP_PROXY=", "http_proxy="); r.Code == 0 {
		t.Fatalf("fetch of an unresolvable host without a proxy succeeded: %s", r)
	}
	r := run("HTTP_PROXY="+proxy.URL, "NO_PROXY=", "no_proxy=")
	if r.Code != 0 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "sha512-") {
		t.Fatalf("fetch through HTTP_PROXY: %s", r)
	}
	if n := proxied.Load(); n < 2 {
		t.Errorf("%d requests went through the proxy, want the image's and its signature's", n)
	}
}
