package tests

import (
	"bufio"
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
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = logs.Process.Kill()
		_ = logs.Wait()
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
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("rkt logs --follow ended while the pod runs")
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no line from rkt logs --follow within 30 s")
		}
		return ""
	}
	if l := next(); l != "one" {
		t.Fatalf("first line %q, want one", l)
	}
	// Only now does the app write its second line.
	e.MustRun("enter", "--app=alpha", uuid, "/bin/touch", "/tmp/go")
	if l := next(); l != "two" {
		t.Fatalf("followed line %q, want two", l)
	}
	if strings.Contains(e.MustRun("logs", "--app=beta", uuid), "one") {
		t.Error("--app=beta shows alpha's output")
	}
}
