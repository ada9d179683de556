package tests

import (
	"archive/tar"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// Socket activation: rkt run started by a service that systemd's socket
// unit activates gets the listening socket, and the app whose manifest
// has a socket-activated port serves on it.

// variantACI writes a copy of test image src whose manifest edit changed,
// named name, and fetches it; it returns the image's name.
func (e *env) variantACI(src, name string, edit func(*schema.ImageManifest)) string {
	e.t.Helper()
	m := imageManifest(e.t, src)
	edit(m)
	mb, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.root, name+".aci")
	out, err := os.Create(p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	tr := openACI(e.t, src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			e.t.Fatal(err)
		}
		if h.Name == "manifest" {
			h.Size = int64(len(mb))
			if err := tw.WriteHeader(h); err != nil {
				e.t.Fatal(err)
			}
			if _, err := tw.Write(mb); err != nil {
				e.t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			e.t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.MustRun("--insecure-options=image", "fetch", p)
	return m.Name.String()
}

// activatedRun starts rkt run as systemd would after a connection to l's
// socket: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID the process's own
// (set by a shell that then execs rkt).
func (e *env) activatedRun(l *net.TCPListener, args ...string) (*exec.Cmd, *strings.Builder) {
	e.t.Helper()
	f, err := l.File()
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	rkt := e.Cmd(args...)
	quoted := make([]string, len(rkt.Args))
	for i, a := range rkt.Args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec `+strings.Join(quoted, " "))
	cmd.Env = rkt.Env
	cmd.ExtraFiles = []*os.File{f}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	e.start(cmd)
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.t.Logf("rkt run output:\n%s", out.String())
		}
	})
	return cmd, out
}

func TestSocketActivation(t *testing.T) {
	e := stage1Env(t)
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	img := e.variantACI("inspect.aci", "activated", func(m *schema.ImageManifest) {
		m.Name = "rktng.io/test/activated"
		m.App.Ports = append(m.App.Ports, types.Port{Name: "http", Protocol: "tcp", Port: uint(port), Count: 1, SocketActivated: true})
	})
	// In the pod's PID namespace and in one of the app's own, where the
	// app's launcher is not the unit's main process.
	for i, flags := range [][]string{nil, {"--pid-namespace=private"}} {
		uuidFile := filepath.Join(e.root, "uuid"+strconv.Itoa(i))
		// The host's network, where the port is taken (by the socket
		// itself): the app can only serve on the socket it was passed.
		args := append(append([]string{"--uuid-file-save=" + uuidFile, img}, flags...), "--", "-serve-http=activated")
		run, _ := e.activatedRun(l, nspawnArgs(args...)...)
		var uuid string
		for deadline := time.Now().Add(30 * time.Second); uuid == ""; time.Sleep(20 * time.Millisecond) {
			uuid = strings.TrimSpace(readFileOr(uuidFile))
			if time.Now().After(deadline) {
				t.Fatal("no pod")
			}
		}
		got := netHTTPGet(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/")
		if !strings.Contains(got, "rkt-"+uuid) {
			t.Errorf("%v: the passed socket answered %q, want the pod's hostname", flags, got)
		}
		if logs := e.MustRun("logs", uuid); !strings.Contains(logs, "listen.fds=1") {
			t.Errorf("%v: the app was not told of its socket: %q", flags, logs)
		}
		e.MustRun("stop", uuid)
		if code := exitCode(t, run); code != 143 {
			t.Errorf("%v: rkt run exited %d, want 143 (the app's SIGTERM)", flags, code)
		}
	}

	// Sockets for a pod none of whose apps takes them: refused in one
	// line before the pod starts.
	refused, out := e.activatedRun(l, nspawnArgs(inspectName, "--", "-exit=0")...)
	if code := exitCode(t, refused); code == 0 || strings.Count(strings.TrimSpace(out.String()), "\n") != 0 ||
		!strings.Contains(out.String(), "no app takes them") {
		t.Errorf("a pod without socket-activated ports: exit %d, %q", refused.ProcessState.ExitCode(), out.String())
	}
}
