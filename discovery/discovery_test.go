package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestDiscoverWalk(t *testing.T) {
	var authSeen string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("ac-discovery") != "1" {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Path {
		case "/org":
			authSeen = r.Header.Get("Authorization")
			fmt.Fprint(w, `<html><head>
<meta name="ac-discovery" content="127.0.0.1/org https://127.0.0.1/{name}-{version}-{os}-{arch}.{ext}">
<meta name="ac-discovery-pubkeys" content="127.0.0.1/org https://127.0.0.1/pubkeys.gpg">
</head></html>`)
		case "/other":
			fmt.Fprint(w, `<meta name="ac-discovery" content="127.0.0.1/other https://127.0.0.1/{name}-{flavor}.{ext}">`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	cfg := Config{InsecureTLS: true, Port: uint(port), Headers: func(host string) http.Header {
		return http.Header{"Authorization": {"Bearer tok"}}
	}}
	ctx := context.Background()

	eps, err := DiscoverImage(ctx, cfg, "127.0.0.1/org/app", DefaultLabels(map[string]string{"version": "1.0"}))
	if err != nil {
		t.Fatal(err)
	}
	want := "https://127.0.0.1/127.0.0.1/org/app-1.0-linux-amd64.aci"
	if len(eps) != 1 || eps[0].ACI != want || eps[0].ASC != want+".asc" {
		t.Fatalf("endpoints %+v, want %s", eps, want)
	}
	if authSeen != "Bearer tok" {
		t.Fatalf("credentials not sent: %q", authSeen)
	}
	keys, err := DiscoverKeys(ctx, cfg, "127.0.0.1/org/app")
	if err != nil || len(keys) != 1 || keys[0] != "https://127.0.0.1/pubkeys.gpg" {
		t.Fatalf("keys %v %v", keys, err)
	}
	// A template whose variables the labels do not fill is no match.
	if _, err := DiscoverImage(ctx, cfg, "127.0.0.1/other/app", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unrendered template: %v", err)
	}
	// Certificates are checked unless told otherwise.
	cfg.InsecureTLS = false
	if _, err := DiscoverImage(ctx, cfg, "127.0.0.1/org/app", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
}

func TestSimpleEndpoints(t *testing.T) {
	labels := map[string]string{"version": "1.0.0", "os": "linux", "arch": "amd64"}
	eps, err := SimpleEndpoints(Config{}, "example.com/reduce-worker", labels)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://example.com/reduce-worker-1.0.0-linux-amd64.aci"
	if len(eps) != 1 || eps[0].ACI != want || eps[0].ASC != want+".asc" {
		t.Fatalf("got %+v, want one endpoint %s", eps, want)
	}

	eps, err = SimpleEndpoints(Config{Port: 8443, InsecureHTTP: true}, "127.0.0.1/org/app", DefaultLabels(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 {
		t.Fatalf("with InsecureHTTP: got %+v, want https then http", eps)
	}
	for i, scheme := range []string{"https", "http"} {
		want := scheme + "://127.0.0.1:8443/org/app-latest-linux-amd64.aci"
		if eps[i].ACI != want {
			t.Errorf("endpoint %d: %s, want %s", i, eps[i].ACI, want)
		}
	}

	if _, err := SimpleEndpoints(Config{}, "Not A Name", labels); err == nil {
		t.Error("an invalid name rendered")
	}
	if _, err := SimpleEndpoints(Config{}, "example.com/app", map[string]string{"version": "1"}); err == nil {
		t.Error("rendered without os and arch")
	}
}
