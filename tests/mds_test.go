package tests

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The metadata service with pods of the default stage1 on the default
// network, where each pod has an address of its own: a pod reads only its
// own data, a signature binds to the pod that made it, and a restart of
// the service loses no running pod.

// mdsProc is a `rkt metadata-service` of one test.
type mdsProc struct {
	e                 *env
	sock, state, logs string
	port              int
	cmd               *exec.Cmd
}

func startMDS(t *testing.T, e *env) *mdsProc {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &mdsProc{e: e, sock: filepath.Join(e.root, "mds.sock"), state: filepath.Join(e.root, "mds-state"),
		logs: filepath.Join(e.root, "mds.log"), port: port}
	m.start(t)
	t.Cleanup(func() { m.stop(t) })
	return m
}

func (m *mdsProc) start(t *testing.T) {
	t.Helper()
	logs, err := os.OpenFile(m.logs, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	m.cmd = m.e.Cmd("metadata-service", "--listen-port="+strconv.Itoa(m.port), "--socket="+m.sock, "--state-dir="+m.state)
	m.cmd.Stdout, m.cmd.Stderr = logs, logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "metadata service socket", func() bool {
		c, err := net.Dial("unix", m.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop ends the service the way systemd would, with SIGTERM.
func (m *mdsProc) stop(t *testing.T) {
	if m.cmd == nil || m.cmd.ProcessState != nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
		t.Errorf("metadata service ignored SIGTERM")
	}
}

// registered lists the pods the service knows, from its socket.
func (m *mdsProc) registered(t *testing.T) []string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", m.sock)
	}}}
	resp, err := c.Get("http://mds/pods")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var uuids []string
	if err := json.NewDecoder(resp.Body).Decode(&uuids); err != nil {
		t.Fatal(err)
	}
	return uuids
}

func (m *mdsProc) log() string {
	b, _ := os.ReadFile(m.logs)
	return string(b)
}

// waitInspectFile waits for a file an app writes with `inspect ... > F.tmp
// && mv F.tmp F` and parses it.
func waitInspectFile(t *testing.T, path string) map[string]string {
	t.Helper()
	waitFor(t, path, func() bool { _, err := os.Stat(path); return err == nil })
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseInspect(string(b))
}

func TestMetadataServiceIsolationSignaturesAndRestart(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	m := startMDS(t, e)
	shared := filepath.Join(e.root, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	const api = "$AC_METADATA_URL/acMetadata/v1"

	// Pod B reports its URL, its UUID and a signature of "hello", then
	// waits for the test; after the service's restart it asks again
	// and verifies what the test hands it.
	script := `/inspect -print-env=AC_METADATA_URL -http='` + api + `/pod/uuid' -http='` + api + `/pod/hmac/sign|content=hello' > /shared/b1.tmp && mv /shared/b1.tmp /shared/b1
while [ ! -e /shared/go ]; do sleep 1; done
/inspect -http='` + api + `/pod/uuid' -http="$(cat /shared/verify-as-a)" -http="$(cat /shared/verify-as-b)" > /shared/b2.tmp && mv /shared/b2.tmp /shared/b2
sleep 600`
	b, _ := startNetPod(t, e, "--net=default", "--mds-register", "--mds-socket="+m.sock,
		"--volume=shared,kind=host,source="+shared, inspectName, "--mount=volume=shared,target=/shared",
		"--exec=/bin/sh", "--", "-c", script)
	b1 := waitInspectFile(t, filepath.Join(shared, "b1"))
	bURL := b1["env:AC_METADATA_URL"]
	if bURL == "" || b1["http.0.status"] != "200" || b1["http.0.body"] != b.UUID || b1["http.1.status"] != "200" {
		t.Fatalf("pod B and the metadata service: %v\nservice log:\n%s", b1, m.log())
	}
	bSig := b1["http.1.body"]

	// B's token is of no use from anywhere but B: not from the host.
	resp, err := http.Get(bURL + "/acMetadata/v1/pod/uuid")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("B's URL from the host: %s, want 401", resp.Status)
	}

	// Pod A: reads its own manifest, cannot read B's even with B's
	// token, checks B's signature (B's, and only for what B signed),
	// and signs "hello" itself.
	aUUIDFile := filepath.Join(e.root, "a-uuid")
	verify := func(uuid, content, sig string) string {
		return "-http=" + api + "/pod/hmac/verify|" + url.Values{"uuid": {uuid}, "content": {content}, "signature": {sig}}.Encode()
	}
	r := e.Run("--insecure-options=image", "run", "--stage1-path="+testImage("stage1.aci"), "--net=default",
		"--mds-register", "--mds-socket="+m.sock, "--uuid-file-save="+aUUIDFile,
		inspectName, "--exec=/inspect", "--",
		"-http="+api+"/pod/uuid",
		"-http="+api+"/pod/manifest",
		"-http="+bURL+"/acMetadata/v1/pod/manifest",
		verify(b.UUID, "hello", bSig),
		verify(b.UUID, "hello!", bSig),
		"-http="+api+"/pod/hmac/sign|content=hello")
	aUUID := strings.TrimSpace(readFile(t, aUUIDFile))
	a := parseInspect(r.Stdout)
	switch {
	case r.Code != 0:
		t.Fatalf("pod A: %s", r)
	case a["http.0.status"] != "200" || a["http.0.body"] != aUUID:
		t.Errorf("A's own UUID: %q %q, want %s", a["http.0.status"], a["http.0.body"], aUUID)
	case a["http.1.status"] != "200" || !strings.Contains(a["http.1.body"], "/pod/manifest") || strings.Contains(a["http.1.body"], "/shared/b1"):
		t.Errorf("A's own manifest: %q %q", a["http.1.status"], a["http.1.body"])
	case a["http.2.status"] != "401" || strings.Contains(a["http.2.body"], "/shared/b1"):
		t.Errorf("A read B's manifest with B's token: %q %q", a["http.2.status"], a["http.2.body"])
	case a["http.3.status"] != "200":
		t.Errorf("B's signature as B, checked by A: %q %q", a["http.3.status"], a["http.3.body"])
	case a["http.4.status"] != "403":
		t.Errorf("B's signature of other content, checked by A: %q %q", a["http.4.status"], a["http.4.body"])
	case a["http.5.status"] != "200" || a["http.5.body"] == "" || a["http.5.body"] == bSig:
		t.Errorf("A's signature: %q %q", a["http.5.status"], a["http.5.body"])
	}
	if t.Failed() {
		t.Fatalf("pod A: %s\nservice log:\n%s", r, m.log())
	}
	aSig := a["http.5.body"]

	// A exited: the service forgets it, and still knows the running B.
	waitFor(t, "the service to drop the exited pod A", func() bool {
		return !strings.Contains(strings.Join(m.registered(t), " "), aUUID)
	})

	// Restart the service while B runs; B still gets answers, and A's
	// signature verifies as A's (the key survived) and as no one else's.
	m.stop(t)
	m.start(t)
	if !strings.Contains(strings.Join(m.registered(t), " "), b.UUID) {
		t.Fatalf("restarted service lost running pod B %s:\n%s", b.UUID, m.log())
	}
	// B reads its two requests from files, then starts on "go".
	for _, f := range [][2]string{
		{"verify-as-a", strings.TrimPrefix(verify(aUUID, "hello", aSig), "-http=")},
		{"verify-as-b", strings.TrimPrefix(verify(b.UUID, "hello", aSig), "-http=")},
		{"go", ""},
	} {
		if err := os.WriteFile(filepath.Join(shared, f[0]), []byte(f[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b2 := waitInspectFile(t, filepath.Join(shared, "b2"))
	if b2["http.0.status"] != "200" || b2["http.0.body"] != b.UUID {
		t.Errorf("B after the restart: %v", b2)
	}
	if b2["http.1.status"] != "200" {
		t.Errorf("A's signature as A, checked by B after the restart: %v", b2)
	}
	if b2["http.2.status"] != "403" {
		t.Errorf("A's signature as B: %v", b2)
	}
	if t.Failed() {
		t.Logf("service log:\n%s", m.log())
	}
}

// --mds-register without a service: the pod does not start, one line says
// why, and nothing is left running.
func TestMetadataServiceAbsent(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	r := e.Run("--insecure-options=image", "run", "--stage1-path="+testImage("stage1.aci"), "--net=host",
		"--mds-register", "--mds-socket="+filepath.Join(e.root, "nothing.sock"), inspectName, "--exec=/bin/true")
	if r.Code != 254 || !strings.Contains(r.Stderr, "metadata service") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("--mds-register without a service: %s", r)
	}
	if list := e.MustRun("list", "--no-legend"); strings.Contains(list, "running") {
		t.Fatalf("a pod runs after a refused start:\n%s", list)
	}
}

// Apps added to and removed from a mutable pod are what the metadata
// service answers for, and the pod stays bound to its address.
func TestMetadataServiceFollowsAppsOfMutablePod(t *testing.T) {
	netNeedStage1(t)
	e := stage1Env(t)
	m := startMDS(t, e)
	_, uuid := e.startSandbox("--net=default", "--mds-register", "--mds-socket="+m.sock)
	const api = "$AC_METADATA_URL/acMetadata/v1"
	ask := func(name string, paths ...string) map[string]string {
		t.Helper()
		args := []string{"app", "add", uuid, inspectName, "--name=" + name, "--", "-print-env=AC_METADATA_URL"}
		for _, p := range paths {
			args = append(args, "-http="+api+p)
		}
		e.MustRun(args...)
		e.MustRun("app", "start", uuid, "--app="+name)
		e.waitAppState(uuid, name, "exited")
		return parseInspect(e.MustRun("logs", "--app="+name, uuid))
	}
	q := ask("q", "/apps/q/image/id", "/pod/manifest")
	imageID := e.appStatus(uuid, "q").ImageID
	if q["http.0.status"] != "200" || q["http.0.body"] != imageID ||
		q["http.1.status"] != "200" || !strings.Contains(q["http.1.body"], `"name":"q"`) {
		t.Fatalf("added app q asking about itself: %v (image %s)\nservice log:\n%s", q, imageID, m.log())
	}
	// The pod's token, from the host: refused, as for any other pod on
	// a network of its own.
	resp, err := http.Get(q["env:AC_METADATA_URL"] + "/acMetadata/v1/pod/uuid")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the sandbox's URL from the host after app add: %s, want 401", resp.Status)
	}
	e.MustRun("app", "rm", uuid, "--app=q")
	r := ask("r", "/apps/q/image/id", "/apps/r/image/id", "/pod/manifest")
	if r["http.0.status"] != "404" || r["http.1.status"] != "200" || strings.Contains(r["http.2.body"], `"name":"q"`) {
		t.Fatalf("after app rm q and app add r: %v\nservice log:\n%s", r, m.log())
	}
	e.MustRun("stop", uuid)
}
