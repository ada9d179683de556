package tests

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rktng/rkt/pkg/pty"
	"golang.org/x/sys/unix"
)

// rkt attach: apps whose streams are pipes or a terminal of their own,
// reached from outside the pod while they run.

const busyboxName = "rktng.io/test/busybox"

// attachEnv is a sandbox with busybox fetched.
func attachEnv(t *testing.T) (*env, string) {
	e := newEnv(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startSandbox("--net=host")
	return e, uuid
}

// lineReader reads lines from r on its own goroutine, so that a test can
// wait for one with a timeout.
type lineReader struct{ lines chan string }

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// want waits for the next line and checks it.
func (lr *lineReader) want(t *testing.T, what, line string) {
	t.Helper()
	select {
	case got, ok := <-lr.lines:
		got = strings.TrimRight(got, "\r")
		if !ok {
			t.Fatalf("%s: ended before %q", what, line)
		}
		if got != line {
			t.Fatalf("%s: got %q, want %q", what, got, line)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no %q after 20s", what, line)
	}
}

// ends waits for the end of the stream.
func (lr *lineReader) ends(t *testing.T, what string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				return
			}
			t.Logf("%s: %q before the end", what, l)
		case <-deadline:
			t.Fatalf("%s did not end", what)
		}
	}
}

// attachCmd starts `rkt attach` with pipes on all three streams.
func (e *env) attachCmd(args ...string) (*exec.Cmd, io.WriteCloser, *lineReader, *lineReader) {
	e.t.Helper()
	cmd := e.Cmd(append([]string{"attach"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	e.start(cmd)
	return cmd, in, newLineReader(out), newLineReader(errOut)
}

func TestAttachStreams(t *testing.T) {
	e, uuid := attachEnv(t)
	e.MustRun("app", "add", uuid, busyboxName, "--name=echo", "--stdin=stream", "--stdout=stream", "--stderr=stream",
		"--exec=/bin/sh", "--", "-c", `while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo "input ended"`)
	e.MustRun("app", "start", uuid, "--app=echo")
	if got := e.MustRun("attach", "--mode=list", uuid); got != "stdin\nstdout\nstderr\n" {
		t.Fatalf("attach --mode=list: %q", got)
	}

	one, in, out, errOut := e.attachCmd(uuid)
	if _, err := io.WriteString(in, "hello\n"); err != nil {
		t.Fatal(err)
	}
	out.want(t, "first client's stdout", "out:hello")
	errOut.want(t, "first client's stderr", "err:hello")

	// A second client sees the same output; either may type.
	two, _, out2, _ := e.attachCmd("--mode=stdout", "--app=echo", uuid)
	// Its connection is made once its output shows; until then lines
	// may go to the first client only.
	deadline := time.Now().Add(20 * time.Second)
	for seen := false; !seen; {
		if time.Now().After(deadline) {
			t.Fatal("second client never saw output")
		}
		_, _ = io.WriteString(in, "ping\n")
		out.want(t, "first client", "out:ping")
		errOut.want(t, "first client's stderr", "err:ping")
		select {
		case l := <-out2.lines:
			if l != "out:ping" {
				t.Fatalf("second client: %q", l)
			}
			seen = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Drain pings the second client may still have queued.
	for drained := false; !drained; {
		select {
		case <-out2.lines:
		case <-time.After(300 * time.Millisecond):
			drained = true
		}
	}
	if _, err := io.WriteString(in, "both\n"); err != nil {
		t.Fatal(err)
	}
	out.want(t, "first client", "out:both")
	out2.want(t, "second client", "out:both")

	// The first client leaves: its end of input is not the app's, and a
	// signal to it does not reach the app.
	in.Close()
	if err := one.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, one); code != 0 {
		t.Errorf("detached client exited %d, want 0", code)
	}
	if s := e.appStatus(uuid, "echo"); s.State != "running" {
		t.Fatalf("app after a client left: %+v", s)
	}

	// A client that only writes ends with its input.
	w := e.Cmd("attach", "--mode=stdin", uuid)
	w.Stdin = strings.NewReader("third\n")
	if r := e.RunCmd(w); r.Code != 0 {
		t.Fatalf("attach --mode=stdin: %s", r)
	}
	out2.want(t, "second client", "out:third")

	// Everything went to the journal too, stdout and stderr apart.
	logs := e.MustRun("logs", "--app=echo", uuid)
	for _, l := range []string{"out:hello", "err:hello", "out:both", "out:third"} {
		if !strings.Contains(logs, l) {
			t.Errorf("rkt logs lacks %q:\n%s", l, logs)
		}
	}

	// When the app ends, so does every attached client.
	e.MustRun("app", "stop", uuid, "--app=echo")
	out2.ends(t, "second client")
	if code := exitCode(t, two); code != 0 {
		t.Errorf("client of a stopped app exited %d, want 0", code)
	}
	oneLine(t, e.Run("attach", uuid), "has exited")
}

func TestAttachTTY(t *testing.T) {
	e, uuid := attachEnv(t)
	e.MustRun("app", "add", uuid, busyboxName, "--name=term", "--stdin=tty", "--stdout=tty", "--stderr=tty",
		"--exec=/bin/sh", "--", "-c", `read x; tty; stty size; echo "got:$x"; read y; echo "bye:$y"`)
	e.MustRun("app", "start", uuid, "--app=term")
	if got := e.MustRun("attach", "--mode=list", uuid); got != "tty\n" {
		t.Fatalf("attach --mode=list: %q", got)
	}

	// rkt attach on a terminal of the test's own, 33 rows by 111 columns.
	master, slave := openTestPTY(t)
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 111}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.Cmd("attach", uuid)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
	screen := &ptyScreen{f: master}
	go screen.read()
	// Once attach has the terminal raw, Enter sends "\r", which the
	// app's own terminal turns into "\n".
	waitFor(t, "raw mode", func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ICANON == 0
	})
	if _, err := master.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	screen.waitFor(t, "got:hello")
	got := screen.String()
	for _, want := range []string{"/dev/pts/", "33 111"} {
		if !strings.Contains(got, want) {
			t.Errorf("the app's terminal output lacks %q: %q", want, got)
		}
	}
	// Ctrl-P Ctrl-Q detaches: attach ends, the app goes on, the
	// terminal is as it was.
	if _, err := master.Write([]byte{0x10, 0x11}); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("detach: exit %d, want 0", code)
	}
	screen.waitFor(t, "rkt attach: detached")
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal not restored: lflag %#x iflag %#x oflag %#x, was %#x %#x %#x",
			after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
	}
	if s := e.appStatus(uuid, "term"); s.State != "running" {
		t.Fatalf("app after detach: %+v", s)
	}

	// Attached again without a terminal: input as is, output until the
	// app ends.
	again, in, out, _ := e.attachCmd(uuid)
	if _, err := io.WriteString(in, "again\n"); err != nil {
		t.Fatal(err)
	}
	// A client whose input ends still gets the output it caused.
	in.Close()
	// (What a terminal's line discipline makes of line ends is its
	// business: compare without carriage returns.)
	out.want(t, "echo of the input", "again")
	out.want(t, "app output", "bye:again")
	out.ends(t, "attach")
	if code := exitCode(t, again); code != 0 {
		t.Errorf("attach to an app that ended: exit %d", code)
	}
	if s := e.waitAppState(uuid, "term", "exited"); s.ExitCode == nil || *s.ExitCode != 0 {
		t.Errorf("app: %+v", s)
	}
	// The journal has the terminal's lines without carriage returns.
	logs := e.MustRun("logs", "--app=term", uuid)
	if !strings.Contains(logs, "got:hello\n") || strings.Contains(logs, "\r") {
		t.Errorf("rkt logs: %q", logs)
	}
}

// --stdin-once: the app's input ends with its first client's, as the
// CRI's stdin_once has it (`kubectl run -i --rm`): a pipe is closed, a
// terminal hangs up.
func TestAttachStdinOnce(t *testing.T) {
	e, uuid := attachEnv(t)
	e.MustRun("app", "add", uuid, busyboxName, "--name=pipe", "--stdin=stream", "--stdout=stream", "--stdin-once",
		"--exec=/bin/sh", "--", "-c", "cat; echo input-ended")
	e.MustRun("app", "add", uuid, busyboxName, "--name=term", "--stdin=tty", "--stdout=tty", "--stdin-once",
		"--exec=/bin/sh", "--", "-c", `read x; echo "got:$x"; exec sleep 600`)
	e.MustRun("app", "start", uuid, "--app=pipe")
	e.MustRun("app", "start", uuid, "--app=term")

	cmd, in, out, _ := e.attachCmd("--app=pipe", uuid)
	if _, err := io.WriteString(in, "one\n"); err != nil {
		t.Fatal(err)
	}
	out.want(t, "pipe app", "one")
	in.Close()
	out.want(t, "pipe app after its input ended", "input-ended")
	out.ends(t, "attach to the pipe app")
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("attach exited %d", code)
	}
	if s := e.waitAppState(uuid, "pipe", "exited"); s.ExitCode == nil || *s.ExitCode != 0 {
		t.Errorf("pipe app: %+v, want exited 0", s)
	}

	cmd, in, out, _ = e.attachCmd("--app=term", uuid)
	if _, err := io.WriteString(in, "two\n"); err != nil {
		t.Fatal(err)
	}
	out.want(t, "terminal echo", "two")
	out.want(t, "terminal app", "got:two")
	in.Close()
	out.ends(t, "attach to the terminal app")
	// The hang-up is SIGHUP: exit status 128+1.
	if s := e.waitAppState(uuid, "term", "exited"); s.ExitCode == nil || *s.ExitCode != 129 {
		t.Errorf("terminal app after the hang-up: %+v, want exited 129", s)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("attach exited %d", code)
	}
	oneLine(t, e.Run("app", "add", uuid, busyboxName, "--name=bad", "--stdin-once", "--exec=/bin/true"), "stdin-once needs stdin to be stream or tty")
}

func TestAttachRefusals(t *testing.T) {
	e := newEnv(t)
	e.Fetch("busybox.aci")
	sandbox, uuid := e.startSandbox("--net=host")
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--stdin=bogus"}, "not one of null, stream, tty"},
		{[]string{"--stdout=null"}, "not one of log, stream, tty"},
		{[]string{"--stdin=tty", "--stdout=log"}, "a terminal is for both or neither"},
		{[]string{"--stdin=stream", "--stderr=tty"}, "stderr can share a terminal only"},
	} {
		args := append([]string{"app", "add", uuid, busyboxName, "--name=bad"}, c.flags...)
		oneLine(t, e.Run(append(args, "--exec=/bin/true")...), c.want)
	}
	if out := e.MustRun("app", "list", uuid, "--no-legend"); strings.TrimSpace(out) != "" {
		t.Errorf("refused apps were added: %q", out)
	}
	oneLine(t, e.Run("attach", uuid), "no app of the pod has a stream to attach to")

	e.MustRun("app", "add", uuid, busyboxName, "--name=plain", "--exec=/bin/sleep", "--", "60")
	e.MustRun("app", "add", uuid, busyboxName, "--name=piped", "--stdin=stream", "--exec=/bin/cat")
	oneLine(t, e.Run("attach", "--app=piped", uuid), "has not been started")
	e.MustRun("app", "start", uuid, "--app=plain")
	e.MustRun("app", "start", uuid, "--app=piped")
	oneLine(t, e.Run("attach", "--app=plain", uuid), "app plain has no stream to attach to")
	oneLine(t, e.Run("attach", "--app=piped", "--mode=tty", uuid), "has no tty endpoint (it has stdin)")
	oneLine(t, e.Run("attach", "--app=piped", "--mode=stdout,bogus", uuid), `"bogus" is not list, auto, tty, stdin, stdout or stderr`)
	oneLine(t, e.Run("attach", "--app=nope", uuid), `no app "nope"`)

	// A stage1 without an attach entrypoint, and --interactive, cannot
	// take such apps; nothing is left behind.
	oneLine(t, e.Run("run", "--stage1-path="+testImage("stage1-fly.aci"), busyboxName, "--stdin=stream", "--exec=/bin/cat"),
		"does not offer")
	oneLine(t, e.Run("run", "--interactive", "--stage1-path="+testImage("stage1.aci"), busyboxName, "--stdout=tty", "--stdin=tty", "--exec=/bin/true"),
		"--interactive gives the app this terminal")
	for _, l := range strings.Split(e.MustRun("list", "--no-legend", "--full"), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, "\t") && f[0] != uuid {
			t.Errorf("a refused run left a pod: %q", l)
		}
	}
	e.MustRun("stop", uuid)
	if code := exitCode(t, sandbox); code != 0 {
		t.Errorf("sandbox exited %d", code)
	}
	oneLine(t, e.Run("attach", "--app=piped", uuid), "not running")
}

// openTestPTY opens a pseudo-terminal pair for a test.
func openTestPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyScreen collects what a terminal's master reads.
type ptyScreen struct {
	f   *os.File
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *ptyScreen) read() {
	b := make([]byte, 4096)
	for {
		n, err := s.f.Read(b)
		if n > 0 {
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (s *ptyScreen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *ptyScreen) waitFor(t *testing.T, text string) {
	t.Helper()
	waitFor(t, "terminal output "+text, func() bool { return strings.Contains(s.String(), text) })
}

// An app of an ordinary pod (rkt run) is attachable as well, while the
// run's own output relay goes on.
func TestAttachRunPod(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	run, uuid := e.startNspawn(busyboxName, "--stdin=stream", "--stdout=stream", "--exec=/bin/sh", "--", "-c",
		`read l; echo "got:$l"; exit 3`)
	e.MustRun("status", "--wait-ready=30s", uuid)
	cmd, in, out, _ := e.attachCmd(uuid)
	if _, err := io.WriteString(in, "via attach\n"); err != nil {
		t.Fatal(err)
	}
	out.want(t, "attached client", "got:via attach")
	out.ends(t, "attach")
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("attach exited %d", code)
	}
	if code := exitCode(t, run); code != 3 {
		t.Errorf("rkt run exited %d, want the app's 3", code)
	}
}
