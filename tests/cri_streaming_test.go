package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/gorilla/websocket"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubectl exec, attach and port-forward through rkt-cri: the CRI calls
// return URLs on rkt-cri's streaming server, and the test speaks the
// Kubernetes WebSocket channel protocol (v4.channel.k8s.io) to them, as
// the kubelet forwards a user's stream.

// wsChannels is one WebSocket stream: what arrived on each channel.
type wsChannels struct {
	t    *testing.T
	conn *websocket.Conn
	mu   sync.Mutex
	got  map[byte]*bytes.Buffer
	done chan struct{}
}

func dialStream(t *testing.T, url string) *wsChannels {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial(strings.Replace(url, "http://", "ws://", 1), http.Header{})
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	if conn.Subprotocol() != "v4.channel.k8s.io" {
		t.Fatalf("negotiated %q", conn.Subprotocol())
	}
	w := &wsChannels{t: t, conn: conn, got: map[byte]*bytes.Buffer{}, done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(w.done)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if len(msg) == 0 {
				continue
			}
			w.mu.Lock()
			if w.got[msg[0]] == nil {
				w.got[msg[0]] = &bytes.Buffer{}
			}
			w.got[msg[0]].Write(msg[1:])
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *wsChannels) send(ch byte, data string) {
	w.t.Helper()
	if err := w.conn.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...)); err != nil {
		w.t.Fatalf("send on channel %d: %v", ch, err)
	}
}

func (w *wsChannels) channel(ch byte) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b := w.got[ch]; b != nil {
		return b.String()
	}
	return ""
}

// waitFor waits until channel ch has text.
func (w *wsChannels) waitFor(ch byte, text string) {
	w.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(w.channel(ch), text); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatalf("channel %d: no %q in %q (channel 3: %q)", ch, text, w.channel(ch), w.channel(3))
		}
	}
}

// closed waits until the server has closed the stream.
func (w *wsChannels) closed() {
	w.t.Helper()
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.t.Fatalf("the stream was not closed; channels: 1 %q 2 %q 3 %q", w.channel(1), w.channel(2), w.channel(3))
	}
}

func TestCRIStreaming(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	reg := newDkRegistry(t, nil, "", "")
	reg.push("test/busybox:v1", aciAsDockerImage(t, "busybox.aci", v1.Config{Entrypoint: []string{"/bin/sh"}}))
	reg.push("test/inspect:v1", inspectDockerImage(t))
	rt, is := criServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The cgroup driver the kubelet is told: this machine's PID 1 is not
	// systemd.
	want := runtimeapi.CgroupDriver_CGROUPFS
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		want = runtimeapi.CgroupDriver_SYSTEMD
	}
	if rc, err := rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{}); err != nil || rc.GetLinux().GetCgroupDriver() != want {
		t.Errorf("RuntimeConfig: %v %v, want %v", rc, err, want)
	}
	for _, ref := range []string{"/test/busybox:v1", "/test/inspect:v1"} {
		if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Host + ref}}); err != nil {
			t.Fatalf("PullImage %s: %v", ref, err)
		}
	}
	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "s", Uid: "uid-s", Namespace: "default"}, Hostname: "stream-pod"}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	t.Cleanup(func() {
		_, _ = rt.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		_, _ = rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	})
	start := func(cfg *runtimeapi.ContainerConfig) string {
		t.Helper()
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg, Config: cfg})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
		}
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			t.Fatalf("StartContainer %s: %v", cfg.Metadata.Name, err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cc.ContainerId})
			if err == nil && s.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				return cc.ContainerId
			}
			if time.Now().After(deadline) {
				t.Fatalf("container %s: %v %v", cfg.Metadata.Name, s, err)
			}
		}
	}
	busybox := &runtimeapi.ImageSpec{Image: reg.Host + "/test/busybox:v1"}
	shell := start(&runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "shell"}, Image: busybox, Stdin: true,
		Args: []string{"-c", `while read l; do echo "out:$l"; echo "err:$l" >&2; done`}})
	term := start(&runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "term"}, Image: busybox, Stdin: true, Tty: true,
		Args: []string{"-c", `read x; stty size; echo "got:$x"; exec sleep 600`}})
	start(&runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "web"}, Image: &runtimeapi.ImageSpec{Image: reg.Host + "/test/inspect:v1"},
		Args: []string{"-serve-http=127.0.0.1:8080"}})

	// exec, no terminal: input, both outputs, the exit code.
	ex, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: shell, Stdin: true, Stdout: true, Stderr: true,
		Cmd: []string{"/bin/sh", "-c", `read x; echo "out:$x"; echo "err:$x" >&2; exit 3`}})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	s := dialStream(t, ex.Url)
	s.send(0, "hello\n")
	s.waitFor(1, "out:hello")
	s.waitFor(2, "err:hello")
	s.closed()
	if st := s.channel(3); !strings.Contains(st, "NonZeroExitCode") || !strings.Contains(st, `"message":"3"`) {
		t.Errorf("exec status: %q, want exit code 3", st)
	}

	// exec on a terminal, resized by the client.
	ex, err = rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: shell, Stdin: true, Stdout: true, Tty: true,
		Cmd: []string{"/bin/sh", "-c", `[ -t 0 ] && echo is-a-tty; read x; stty size; echo "got:$x"`}})
	if err != nil {
		t.Fatalf("Exec tty: %v", err)
	}
	s = dialStream(t, ex.Url)
	s.send(4, `{"Width":111,"Height":33}`)
	s.waitFor(1, "is-a-tty")
	s.send(0, "hi\n")
	s.waitFor(1, "got:hi")
	s.closed()
	if out := s.channel(1); !strings.Contains(out, "33 111") {
		t.Errorf("exec tty output %q: the terminal was not resized to 33x111", out)
	}
	if st := s.channel(3); !strings.Contains(st, `"status":"Success"`) {
		t.Errorf("exec tty status: %q", st)
	}

	// attach to a container's own input and outputs; the container
	// outlives the stream.
	at, err := rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: shell, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	s = dialStream(t, at.Url)
	// The attach may connect after the first line: send until one shows.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(s.channel(1), "out:ping"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("attach: no output; channels %q %q %q", s.channel(1), s.channel(2), s.channel(3))
		}
		s.send(0, "ping\n")
	}
	s.waitFor(2, "err:ping")
	s.conn.Close()

	// attach to a container's terminal: the client's size reaches it.
	at, err = rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: term, Stdin: true, Stdout: true, Tty: true})
	if err != nil {
		t.Fatalf("Attach tty: %v", err)
	}
	s = dialStream(t, at.Url)
	s.send(4, `{"Width":111,"Height":33}`)
	time.Sleep(500 * time.Millisecond)
	s.send(0, "yo\r")
	s.waitFor(1, "got:yo")
	if out := s.channel(1); !strings.Contains(out, "33 111") {
		t.Errorf("attach tty output %q: the terminal was not resized to 33x111", out)
	}
	s.conn.Close()

	// port-forward to a port open on the pod's loopback only.
	pf, err := rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sb.PodSandboxId, Port: []int32{8080}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	s = dialStream(t, pf.Url+"?port=8080")
	s.send(0, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	s.waitFor(0, "stream-pod")
	data := []byte(s.channel(0))
	if len(data) < 2 || binary.LittleEndian.Uint16(data) != 8080 || !strings.Contains(string(data), "HTTP/1.0 200") {
		t.Errorf("port-forward data: %q", data)
	}

	// Streams of containers that do not run are refused up front.
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: shell, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: shell, Stdout: true, Cmd: []string{"true"}}); err == nil {
		t.Error("Exec in a stopped container was accepted")
	}
}

// An image pull secret: PullImage with credentials reaches a registry that
// answers 401 without them; the credentials are used for that pull only
// and leave nothing behind.
func TestCRIPullCredentials(t *testing.T) {
	e := newEnv(t)
	reg := newDkRegistry(t, nil, "alice", "s3cret")
	reg.push("private/inspect:v1", inspectDockerImage(t))
	_, is := criServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img := &runtimeapi.ImageSpec{Image: reg.Host + "/private/inspect:v1"}
	pull := func(a *runtimeapi.AuthConfig) error {
		_, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: img, Auth: a})
		return err
	}
	if err := pull(nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("pull without credentials: %v, want a 401 refusal", err)
	}
	if err := pull(&runtimeapi.AuthConfig{Username: "alice", Password: "wrong"}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("pull with a wrong password: %v", err)
	}
	if err := pull(&runtimeapi.AuthConfig{Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	// Pulled again (pull policy update asks the registry), with the
	// Docker config's "auth" form and the registry as server_address.
	if err := pull(&runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("alice:s3cret")), ServerAddress: "http://" + reg.Host + "/"}); err != nil {
		t.Errorf("pull with auth: %v", err)
	}
	// A registry that takes tokens only: a registry token, or an identity
	// token that its token service exchanges (the user name Docker puts
	// beside one does not matter).
	treg := newDkTokenRegistry(t, nil, "bearer-5d1e", "refresh-77ab")
	treg.push("private/inspect:v1", inspectDockerImage(t))
	timg := &runtimeapi.ImageSpec{Image: treg.Host + "/private/inspect:v1"}
	for _, c := range []struct {
		auth *runtimeapi.AuthConfig
		ok   bool
	}{
		{&runtimeapi.AuthConfig{RegistryToken: "expired"}, false},
		{&runtimeapi.AuthConfig{RegistryToken: "bearer-5d1e"}, true},
		{&runtimeapi.AuthConfig{Username: "<token>", IdentityToken: "refresh-77ab"}, true},
	} {
		_, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: timg, Auth: c.auth})
		if (err == nil) != c.ok {
			t.Errorf("pull with %+v: %v", c.auth, err)
		}
	}
	if treg.count("POST", "/token") == 0 {
		t.Error("the identity token was not exchanged at the token service")
	}
	if st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: img}); err != nil || st.Image == nil {
		t.Errorf("ImageStatus after the pull: %v %v", st, err)
	}
	left, _ := filepath.Glob(filepath.Join(e.root, "cri", "pull-*"))
	if len(left) > 0 {
		t.Errorf("credentials left behind: %v", left)
	}
}

// rkt-cri under a service of Type=notify says READY=1 once it listens, and
// keeps NOTIFY_SOCKET from the sandboxes it starts.
func TestCRINotifyReady(t *testing.T) {
	e := newEnv(t)
	sock, conn := notifySocket(t, e.root)
	t.Setenv("NOTIFY_SOCKET", sock)
	rt, _ := criServer(t, e)
	waitReady(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "n", Uid: "uid-n", Namespace: "default"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}}})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	t.Cleanup(func() {
		_, _ = rt.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		_, _ = rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	})
	if m := readNotify(conn, 500*time.Millisecond); m != "" {
		t.Errorf("a sandbox notified the server's service manager: %q", m)
	}
}

// GetContainerEvents (the kubelet's evented PLEG): a container's life as
// events, each with its sandbox's status and its containers'.
func TestCRIContainerEvents(t *testing.T) {
	rt, img, ctx := criWithBusybox(t)
	stream, err := rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	events := make(chan *runtimeapi.ContainerEventResponse, 20)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	next := func(id string, want runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the event stream ended before %v", want)
			}
			if ev.ContainerId != id || ev.ContainerEventType != want {
				t.Fatalf("event %v of %s, want %v of %s", ev.ContainerEventType, ev.ContainerId, want, id)
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatalf("no %v event", want)
		}
		return nil
	}
	sb, cfg := nodeSandbox(t, rt, ctx, "ev", false)
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "short"}, Image: img, Args: []string{"-c", "sleep 1; exit 4"}}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	ev := next(cc.ContainerId, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	if ev.PodSandboxStatus.GetId() != sb || len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("created event: %v", ev)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	next(cc.ContainerId, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	// It exits on its own.
	ev = next(cc.ContainerId, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].ExitCode != 4 {
		t.Errorf("stopped event: %v", ev.ContainersStatuses)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	next(cc.ContainerId, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
}

// criWithBusybox starts rkt-cri with the busybox test image pulled, as a
// Docker image from a registry on 127.0.0.1, and returns a client, the
// image and a context that ends with the test.
func criWithBusybox(t *testing.T) (runtimeapi.RuntimeServiceClient, *runtimeapi.ImageSpec, context.Context) {
	t.Helper()
	e := newEnv(t)
	reg := newDkRegistry(t, nil, "", "")
	reg.push("test/busybox:v1", aciAsDockerImage(t, "busybox.aci", v1.Config{Entrypoint: []string{"/bin/sh"}}))
	rt, is := criServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	img := &runtimeapi.ImageSpec{Image: reg.Host + "/test/busybox:v1"}
	if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: img}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	return rt, img, ctx
}

// nodeSandbox runs a sandbox on the node's network, removed at the test's
// end, and returns its ID and config.
func nodeSandbox(t *testing.T, rt runtimeapi.RuntimeServiceClient, ctx context.Context, name string, privileged bool) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := sandboxConfig(name, &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE})
	cfg.Linux.SecurityContext.Privileged = privileged
	id, err := runSandbox(t, rt, ctx, cfg)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return id, cfg
}

// sandboxConfig is a sandbox's config with the namespaces given.
func sandboxConfig(name string, ns *runtimeapi.NamespaceOption) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: "uid-" + name, Namespace: "default"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}}}
}

// runSandbox runs a sandbox, stopped and removed at the test's end.
func runSandbox(t *testing.T, rt runtimeapi.RuntimeServiceClient, ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", err
	}
	t.Cleanup(func() {
		_, _ = rt.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		_, _ = rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	})
	return sb.PodSandboxId, nil
}

// execWhenRunning runs cmd in a container with ExecSync, again for a while
// until it exits 0 (a container just started may not have recorded its
// PID yet), and returns the last answer.
func execWhenRunning(t *testing.T, rt runtimeapi.RuntimeServiceClient, ctx context.Context, id string, cmd ...string) (*runtimeapi.ExecSyncResponse, error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Timeout: 30, Cmd: cmd})
		if (err == nil && r.ExitCode == 0) || time.Now().After(deadline) {
			return r, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
