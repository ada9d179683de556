package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// connectProxy is an HTTP proxy on 127.0.0.1 that tunnels CONNECT requests,
// resolving proxiedHost to 127.0.0.1, and records what it was asked for.
type connectProxy struct {
	URL     string
	mu      sync.Mutex
	tunnels []string
}

func newConnectProxy(t *testing.T) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "this proxy only tunnels", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.tunnels = append(p.tunnels, r.Host)
		p.mu.Unlock()
		host, port, err := net.SplitHostPort(r.Host)
		if err != nil || host != proxiedHost {
			http.Error(w, "unknown host", http.StatusBadGateway)
			return
		}
		upstream, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		fmt.Fprint(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() {
			_, _ = io.Copy(upstream, conn)
			upstream.Close()
		}()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	p.URL = "http://" + ln.Addr().String()
	return p
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tunnels...)
}

// TestFetchThroughHTTPSProxy: HTTPS_PROXY from the environment carries meta
// discovery, the signature and the image (the proxy resolves a name the
// host cannot), and NO_PROXY exempts a host from it.
func TestFetchThroughHTTPSProxy(t *testing.T) {
	e := newFtEnv(t)
	proxy := newConnectProxy(t)
	k := libKey(t, "ed25519", nil)
	prefix := proxiedHost + "/app"
	target := net.JoinHostPort(proxiedHost, e.srv.Port)
	e.srv.discoveryPage(prefix, fmt.Sprintf(`<meta name="ac-discovery" content="%s https://%s/images/{name}-{version}-{os}-{arch}.{ext}">`, prefix, target))
	aci := ftImage{name: prefix, version: "1.0"}.build(t)
	e.publish(imagePath(prefix, "1.0"), aci, &k)
	e.trust(prefix, k)

	viaProxy := func(policy string, extra ...string) result {
		cmd := e.Cmd("fetch", "--pull-policy="+policy, prefix+":1.0")
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+e.ca.pemPath, "SSL_CERT_DIR=/nonexistent",
			"RKT_DISCOVERY_PORT="+e.srv.Port, "HTTPS_PROXY="+proxy.URL, "https_proxy="+proxy.URL, "NO_PROXY=", "no_proxy=")
		cmd.Env = append(cmd.Env, extra...)
		return e.RunCmd(cmd)
	}
	r := viaProxy("new")
	if r.Code != 0 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "sha512-") {
		t.Fatalf("fetch through the proxy: %s", r)
	}
	tunnels := proxy.seen()
	if len(tunnels) == 0 {
		t.Fatal("the proxy saw no request")
	}
	for _, h := range tunnels {
		if h != target {
			t.Errorf("proxy asked for %q, want %q", h, target)
		}
	}
	for _, p := range []string{imagePath(prefix, "1.0"), imagePath(prefix, "1.0") + ".asc"} {
		if e.srv.count(e.srv.gets, p) != 1 {
			t.Errorf("%s: %d downloads through the proxy, want 1", p, e.srv.count(e.srv.gets, p))
		}
	}

	// Exempted, the name must be resolved here, which it cannot be.
	before := len(proxy.seen())
	r = viaProxy("update", "NO_PROXY="+proxiedHost, "no_proxy="+proxiedHost)
	if r.Code == 0 {
		t.Fatalf("fetch with the host exempted from the proxy succeeded: %s", r)
	}
	if n := len(proxy.seen()); n != before {
		t.Errorf("NO_PROXY host went through the proxy (%d more tunnels)", n-before)
	}
	t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
	if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines != 1 || !strings.Contains(r.Stderr, proxiedHost) {
		t.Errorf("want one line naming %s: %s", proxiedHost, r.Stderr)
	}
}
