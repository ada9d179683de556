package tests

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// rkt logs --follow --app keeps printing what one app writes while the pod
// runs: a line written after it started arrives, the other app's do not.
func TestStage1LogsFollowApp(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startNspawn("rktng.io/test/busybox", "--name=alpha", "--exec=/bin/sh", "--", "-c",
		"echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two; sleep 60",
		"---", "rktng.io/test/busybox", "--name=beta", "--exec=/bin/sh", "--", "-c", "echo b-line; sleep 60")
	logs := e.Cmd("logs", "--follow", "--app=alpha", uuid)
	out, err := logs.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a buffer: Wait would wait for a copy from the pipe.
	logsErr, err := os.CreateTemp(e.root, "logs-stderr")
	if err != nil {
		t.Fatal(err)
	}
	logs.Stderr = logsErr
	stderrText := func() string { b, _ := os.ReadFile(logsErr.Name()); return string(b) }
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	stopLogs := func() {
		if !waited {
			waited = true
			_ = logs.Process.Kill()
			_ = logs.Wait()
		}
	}
	defer func() {
		stopLogs()
		e.MustRun("stop", "--force", uuid)
	}()
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				stopLogs()
				t.Fatalf("rkt logs --follow ended while the pod runs, before %q (%v): %s", want, logs.ProcessState, stderrText())
			}
			return l
		case <-time.After(30 * time.Second):
			stopLogs()
			t.Fatalf("line %q not printed by rkt logs --follow within 30 s: %s", want, stderrText())
		}
		return ""
	}
	if l := next("one"); l != "one" {
		t.Fatalf("first line %q, want one", l)
	}
	// Only now does the app write its second line.
	e.MustRun("enter", "--app=alpha", uuid, "/bin/touch", "/tmp/go")
	if l := next("two"); l != "two" {
		t.Fatalf("followed line %q, want two", l)
	}
	if strings.Contains(e.MustRun("logs", "--app=beta", uuid), "one") {
		t.Error("--app=beta shows alpha's output")
	}
	// Killing rkt logs --follow takes its journalctl with it, while its
	// output is still read (journalctl also ends when its output closes).
	_ = logs.Process.Kill()
	waitFor(t, "journalctl to end with rkt logs", func() bool { return len(journalctlsOf(uuid)) == 0 })
	stopLogs()
}

// journalctlsOf lists the PIDs of journalctl processes reading the
// journal of pod uuid.
func journalctlsOf(uuid string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), "journalctl") && strings.Contains(string(b), uuid) {
			pids = append(pids, d.Name())
		}
	}
	return pids
}
