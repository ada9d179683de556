package mds

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/lock"
)

// startService runs a real service on a unix socket and 127.0.0.1.
func startService(t *testing.T, state string) (*Service, *Client, string) {
	t.Helper()
	svc, err := NewService(state, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "mds.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	port := tcp.Addr().(*net.TCPAddr).Port
	s1 := &http.Server{Handler: svc.MetadataHandler()}
	s2 := &http.Server{Handler: svc.RegistrationHandler(port)}
	go s1.Serve(tcp)
	go s2.Serve(unix)
	t.Cleanup(func() { s1.Close(); s2.Close() })
	return svc, NewClient(sock), URL("127.0.0.1", port, "")
}

func testPod(t *testing.T, uuid, appName string) *Registration {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	pm := schema.BlankPodManifest()
	pm.Annotations.Set("pod-of", uuid[:8])
	id, err := types.NewHash("sha512-" + strings.Repeat("a", 128))
	if err != nil {
		t.Fatal(err)
	}
	pm.Apps = schema.AppList{{Name: types.ACName(appName),
		Image: schema.RuntimeImage{Name: types.MustACIdentifier("example.com/" + appName), ID: *id}}}
	im := schema.BlankImageManifest()
	im.Name = *types.MustACIdentifier("example.com/" + appName)
	im.Annotations.Set("from-image", "yes")
	return &Registration{UUID: uuid, Token: tok, Manifest: *pm,
		Apps: map[string]App{appName: {ImageID: "sha512-" + strings.Repeat("a", 128), ImageManifest: *im}}}
}

func get(t *testing.T, u string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func post(t *testing.T, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const (
	uuidA = "0f6a7a52-1111-4c2e-9a55-0123456789ab"
	uuidB = "0f6a7a52-2222-4c2e-9a55-0123456789ab"
)

func TestPodsSeeOnlyThemselvesAndSignaturesBindToThePod(t *testing.T) {
	state := t.TempDir()
	_, c, base := startService(t, state)
	ctx := context.Background()
	a, b := testPod(t, uuidA, "alpha"), testPod(t, uuidB, "beta")
	for _, r := range []*Registration{a, b} {
		if err := c.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	urlA, urlB := base+a.Token+apiPrefix, base+b.Token+apiPrefix

	code, ctype, body := get(t, urlA+"/pod/uuid")
	if code != 200 || body != uuidA || ctype != textPlain {
		t.Fatalf("pod A uuid: %d %q %q", code, ctype, body)
	}
	if code, ctype, body = get(t, urlA+"/pod/manifest"); code != 200 || ctype != appJSON || !strings.Contains(body, `"alpha"`) || strings.Contains(body, "beta") {
		t.Fatalf("pod A manifest: %d %q %s", code, ctype, body)
	}
	// A names B's app: the app is looked up in A's pod only.
	if code, _, _ = get(t, urlA+"/apps/beta/image/manifest"); code != 404 {
		t.Fatalf("pod A reading pod B's app: status %d, want 404", code)
	}
	if code, _, body = get(t, urlA+"/apps/alpha/annotations"); code != 200 || !strings.Contains(body, "from-image") {
		t.Fatalf("app annotations: %d %s", code, body)
	}
	if code, _, _ = get(t, base+strings.Repeat("0", 64)+apiPrefix+"/pod/uuid"); code != 401 {
		t.Fatalf("unknown token: status %d, want 401", code)
	}

	code, sig := post(t, urlA+"/pod/hmac/sign", url.Values{"content": {"hello"}})
	if code != 200 || sig == "" {
		t.Fatalf("sign: %d %q", code, sig)
	}
	verify := func(uuid, content string) int {
		c, _ := post(t, urlB+"/pod/hmac/verify", url.Values{"content": {content}, "uuid": {uuid}, "signature": {sig}})
		return c
	}
	if got := verify(uuidA, "hello"); got != 200 {
		t.Fatalf("verify as A: %d, want 200", got)
	}
	if got := verify(uuidB, "hello"); got != 403 {
		t.Fatalf("verify as B: %d, want 403", got)
	}
	if got := verify(uuidA, "hellO"); got != 403 {
		t.Fatalf("verify other content: %d, want 403", got)
	}

	// A restarted service (same state dir) answers for both pods and
	// still verifies A's old signature.
	_, _, base2 := startService(t, state)
	if code, _, body = get(t, base2+b.Token+apiPrefix+"/pod/uuid"); code != 200 || body != uuidB {
		t.Fatalf("after restart: %d %q", code, body)
	}
	if c, _ := post(t, base2+b.Token+apiPrefix+"/pod/hmac/verify", url.Values{"content": {"hello"}, "uuid": {uuidA}, "signature": {sig}}); c != 200 {
		t.Fatalf("verify after restart: %d", c)
	}

	if err := c.Unregister(ctx, uuidA); err != nil {
		t.Fatal(err)
	}
	if code, _, _ = get(t, urlA+"/pod/uuid"); code != 401 {
		t.Fatalf("unregistered pod still answered: %d", code)
	}
}

func TestAddressBoundPods(t *testing.T) {
	_, c, base := startService(t, t.TempDir())
	p := testPod(t, uuidA, "alpha")
	p.IPs = []string{"10.99.0.7"}
	if err := c.Register(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	// The token alone is not enough from another address.
	if code, _, _ := get(t, base+p.Token+apiPrefix+"/pod/uuid"); code != 401 {
		t.Fatalf("request from 127.0.0.1 for a pod at 10.99.0.7: %d, want 401", code)
	}
}

// A pod registered before its network existed is bound to its addresses
// later (stage1 does it once the pod's networks are up).
func TestBindAddressesAfterRegistration(t *testing.T) {
	svc, c, base := startService(t, t.TempDir())
	ctx := context.Background()
	p := testPod(t, uuidA, "alpha")
	if err := c.Register(ctx, p); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, base+p.Token+apiPrefix+"/pod/uuid"); code != 200 {
		t.Fatalf("unbound pod from 127.0.0.1: %d, want 200", code)
	}
	if err := c.BindAddresses(ctx, uuidA, []string{"10.99.0.7"}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, base+p.Token+apiPrefix+"/pod/uuid"); code != 401 {
		t.Fatalf("pod bound to 10.99.0.7 answered 127.0.0.1: %d, want 401", code)
	}
	if got := svc.Registry().List(); len(got) != 1 || len(got[0].IPs) != 1 {
		t.Fatalf("registration after binding: %+v", got)
	}
	// Registering again (rkt app add changed the pod) keeps the binding.
	if err := c.Register(ctx, p); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, base+p.Token+apiPrefix+"/pod/uuid"); code != 401 {
		t.Fatalf("re-registered pod lost its address binding: %d, want 401", code)
	}
	if err := c.BindAddresses(ctx, uuidB, []string{"10.99.0.8"}); err == nil || !strings.Contains(err.Error(), "no registered pod") {
		t.Fatalf("binding an unknown pod: %v", err)
	}
	if err := c.BindAddresses(ctx, uuidA, []string{"not-an-ip"}); err == nil {
		t.Fatal("a malformed address was accepted")
	}
}

func TestRegistrationValidation(t *testing.T) {
	_, c, _ := startService(t, t.TempDir())
	p := testPod(t, uuidA, "alpha")
	p.Token = "short"
	if err := c.Register(context.Background(), p); err == nil {
		t.Fatal("short token accepted")
	}
	q := testPod(t, "not-a-uuid", "alpha")
	if err := c.Register(context.Background(), q); err == nil {
		t.Fatal("bad uuid accepted")
	}
	if err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Register(context.Background(), testPod(t, uuidB, "b")); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("unreachable service: %v", err)
	}
}

func TestPruneDropsPodsWhoseLockIsFree(t *testing.T) {
	svc, c, _ := startService(t, t.TempDir())
	running, exited := t.TempDir(), t.TempDir()
	held, err := lock.Open(running)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.Exclusive(); err != nil {
		t.Fatal(err)
	}
	a, b := testPod(t, uuidA, "alpha"), testPod(t, uuidB, "beta")
	a.PodDir, b.PodDir = running, exited
	for _, r := range []*Registration{a, b} {
		if err := c.Register(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	dropped := svc.Prune()
	if len(dropped) != 1 || dropped[0] != uuidB {
		t.Fatalf("pruned %v, want only %s", dropped, uuidB)
	}
}
