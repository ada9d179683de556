package tests

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A pod run as a systemd service of Type=notify: rkt run, given
// $NOTIFY_SOCKET, says READY=1 there once the pod has started, and, for
// an app that supports sd_notify (appc.io/executor/supports-systemd-notify),
// only once that app has said so itself.

// notifySocket listens where a service manager would.
func notifySocket(t *testing.T, dir string) (string, *net.UnixConn) {
	t.Helper()
	p := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

// readNotify returns the next message, or "" after d.
func readNotify(c *net.UnixConn, d time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		return ""
	}
	return string(b[:n])
}

// waitReady reads messages until one has READY=1.
func waitReady(t *testing.T, c *net.UnixConn) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		m := readNotify(c, time.Second)
		if m == "" {
			continue
		}
		got = append(got, m)
		if strings.Contains(m, "READY=1") {
			return got
		}
	}
	t.Fatalf("no READY=1; got %q", got)
	return nil
}

func TestNotifyReady(t *testing.T) {
	e := stage1Env(t)
	sock, conn := notifySocket(t, e.root)
	gate := filepath.Join(e.root, "gate")
	if err := os.MkdirAll(gate, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(extra ...string) string {
		t.Helper()
		uuidFile := filepath.Join(e.root, "uuid-"+time.Now().Format("150405.000000000"))
		args := append(nspawnArgs("--uuid-file-save="+uuidFile, "--volume=gate,kind=host,source="+gate, inspectName,
			"--mount=volume=gate,target=/gate"), extra...)
		cmd := e.Cmd(append(args, "--", "-notify-ready-when=/gate/go", "-sleep=60s")...)
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
		e.start(cmd)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if b, err := os.ReadFile(uuidFile); err == nil && len(b) > 0 {
				return strings.TrimSpace(string(b))
			}
			if time.Now().After(deadline) {
				t.Fatal("no pod")
			}
		}
	}

	// An app that supports sd_notify: the pod boots, its app runs, and
	// READY=1 waits for the app's own.
	uuid := start("--annotation=appc.io/executor/supports-systemd-notify=true")
	e.MustRun("status", "--wait-ready=30s", uuid)
	for deadline := time.Now().Add(700 * time.Millisecond); time.Now().Before(deadline); {
		if m := readNotify(conn, time.Until(deadline)); strings.Contains(m, "READY=1") {
			t.Fatalf("READY=1 before the app said it was ready: %q", m)
		}
	}
	if err := os.WriteFile(filepath.Join(gate, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	msgs := waitReady(t, conn)
	for _, m := range msgs {
		if strings.Contains(m, "X_NSPAWN") || strings.Contains(m, "MAINPID") {
			t.Errorf("nspawn's own fields passed on: %q", m)
		}
	}
	if logs := e.MustRun("logs", uuid); !strings.Contains(logs, "notify=READY=1") {
		t.Errorf("the app did not reach the pod's systemd: %q", logs)
	}
	e.MustRun("stop", uuid)
	if err := os.Remove(filepath.Join(gate, "go")); err != nil {
		t.Fatal(err)
	}

	// An app that does not: READY=1 once the pod's systemd has started
	// it (a simple unit is started when forked: its launcher may not
	// have recorded it as running yet).
	uuid = start()
	waitReady(t, conn)
	if s := e.appStatus(uuid, "inspect"); s.State == "exited" {
		t.Errorf("app at READY: %+v", s)
	}
	e.waitAppState(uuid, "inspect", "running")
	e.MustRun("stop", uuid)
}

// The fly stage1 says READY=1 once its one app runs.
func TestNotifyReadyFly(t *testing.T) {
	e := newEnv(t)
	e.Fetch("inspect.aci")
	sock, conn := notifySocket(t, e.root)
	uuidFile := filepath.Join(e.root, "uuid")
	cmd := e.Cmd(flyArgs("--uuid-file-save="+uuidFile, inspectName, "--", "-sleep=60s")...)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	e.start(cmd)
	waitReady(t, conn)
	uuid := strings.TrimSpace(readFileOr(uuidFile))
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "running" {
		t.Errorf("pod at READY: %v", st)
	}
	e.MustRun("stop", uuid)
}
