package stage1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// The modes below run inside the pod, started by its systemd.

// teeName is the argv[0] of the launcher's output tee.
const teeName = "iotee"

// Launch is the launcher mode (`/appexec CONFIG`), every app's ExecStart
// and every event handler's. With RKT_IOMUX set it first puts a detached
// tee between its stdout/stderr (the journal) and the app, so that the
// app's output also reaches the run entrypoint; then pkg/appexec turns
// this process into the app. It returns only on failure.
func Launch(args []string) int {
	var rooted func() error
	if p := os.Getenv(listenEnv); p != "" && len(args) == 1 {
		os.Unsetenv(listenEnv)
		// First of all: the sockets go to fd 3 and up, which nothing
		// may have taken yet. Event handlers get none.
		if base := strings.TrimSuffix(filepath.Base(args[0]), ".json"); !strings.Contains(base, ".") {
			if err := TakePassedSockets(p); err != nil {
				fmt.Fprintf(os.Stderr, "appexec: passed sockets of %s: %v\n", base, err)
				return appexec.ExitLaunchFailed
			}
		}
	}
	if len(args) == 1 {
		if dir := os.Getenv("RKT_IOMUX"); dir != "" {
			os.Unsetenv("RKT_IOMUX")
			app := strings.SplitN(filepath.Base(args[0]), ".", 2)[0]
			var streams *pod.Streams
			if v := os.Getenv(attachEnv); v != "" {
				s, err := parseStreams(v)
				if err != nil {
					fmt.Fprintf(os.Stderr, "appexec: %s: %v\n", app, err)
					return appexec.ExitLaunchFailed
				}
				streams = &s
			}
			os.Unsetenv(attachEnv)
			if err := startTee(dir, app, streams); err != nil {
				if streams != nil {
					// The app would run without the streams it was
					// promised.
					fmt.Fprintf(os.Stderr, "appexec: streams of %s: %v\n", app, err)
					return appexec.ExitLaunchFailed
				}
				fmt.Fprintf(os.Stderr, "appexec: output relay of %s: %v\n", app, err)
			}
		}
		stdin := os.Getenv(stdinEnv)
		os.Unsetenv(stdinEnv)
		// The app's own config (not an event handler's): record the PID,
		// which the app keeps across exec, for `rkt enter`.
		if base := strings.TrimSuffix(filepath.Base(args[0]), ".json"); !strings.Contains(base, ".") {
			rooted = pidRecorder(base)
			if stdin != "" {
				if err := openStdin(stdin); err != nil {
					fmt.Fprintf(os.Stderr, "appexec: input of %s: %v\n", base, err)
					return appexec.ExitLaunchFailed
				}
			}
		}
	}
	if len(args) == 1 && inUserNS() {
		return launchInUserNS(args[0], rooted)
	}
	return appexec.MainRooted(args, os.Stderr, rooted)
}

// pidRecorder returns the callback that records this process's PID as
// app's in pidsDir, for appexec to call once the launcher is in the app's
// root: `rkt enter` joining it earlier found stage1's root and not the
// app's files. The directory is opened now, while it is in view; a
// failure to record is reported but does not stop the app.
func pidRecorder(app string) func() error {
	if err := os.MkdirAll(pidsDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "appexec: record pid of %s: %v\n", app, err)
		return nil
	}
	dfd, err := unix.Open(pidsDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "appexec: record pid of %s: %v\n", app, err)
		return nil
	}
	// Now, while /proc is still the pod's: the app's root may have the
	// /proc of a PID namespace of its own.
	pid := podPID()
	return func() error {
		defer unix.Close(dfd)
		tmp := "." + app + ".tmp"
		fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err == nil {
			_, err = unix.Write(fd, []byte(strconv.Itoa(pid)))
			unix.Close(fd)
		}
		if err == nil {
			err = unix.Renameat(dfd, tmp, dfd, app)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "appexec: record pid of %s: %v\n", app, err)
		}
		return nil
	}
}

// podPID is this process's PID in the pod's PID namespace, which /proc
// (the pod's) says: in an app's own PID namespace getpid(2) would give
// the PID there.
func podPID() int {
	if l, err := os.Readlink("/proc/self"); err == nil {
		if n, err := strconv.Atoi(l); err == nil {
			return n
		}
	}
	return os.Getpid()
}

// stdinEnv names the FIFO an app reads its input from (see preparePod). The
// launcher opens it, not systemd: StandardInput= would apply to the
// unit's ExecStopPost commands too, whose open of the FIFO would wait
// forever for a writer that is gone.
const stdinEnv = "RKT_STDIN"

// openStdin makes the FIFO at path this process's standard input. The
// open waits for the run entrypoint to open the other end.
func openStdin(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Dup3(int(f.Fd()), 0, 0)
}

// inUserNS says whether the pod runs in a user namespace of its own
// (--private-users).
func inUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// launchInUserNS launches an app of a pod in a user namespace, where
// nspawn's bounding set lacks what the namespace cannot grant (the
// network capabilities with the host's network): the app gets what it
// asked for of what the pod has.
func launchInUserNS(path string, rooted func() error) int {
	c, err := appexec.ReadConfig(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "appexec: %v\n", err)
		return appexec.ExitLaunchFailed
	}
	if c.NeedsPIDNamespace() {
		return appexec.LaunchInPIDNamespace(path, os.Stderr)
	}
	have := map[string]bool{}
	for _, n := range caps.Bounding().Names() {
		have[n] = true
	}
	keep := func(list []string) []string {
		out := []string{}
		for _, n := range list {
			if have[n] {
				out = append(out, n)
			}
		}
		return out
	}
	if c.Capabilities == nil {
		c.Capabilities = caps.Default()
	}
	c.Capabilities = keep(c.Capabilities)
	c.AmbientCapabilities = keep(c.AmbientCapabilities)
	err = appexec.ExecRooted(c, rooted)
	fmt.Fprintf(os.Stderr, "appexec: %v\n", err)
	return appexec.ExitLaunchFailed
}

// startTee starts the tee and points our standard streams at it: output
// and error output always, input and a terminal as streams asks.
func startTee(dir, app string, streams *pod.Streams) error {
	as, err := openStreams(streams)
	if err != nil {
		return err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		as.closeAll()
		return err
	}
	defer readyR.Close()
	self, err := os.Executable()
	if err != nil {
		as.closeAll()
		readyW.Close()
		return err
	}
	args := []string{dir, app}
	if streams != nil {
		args = append(args, formatStreams(*streams))
	}
	cmd := exec.Command(self, args...)
	cmd.Args[0] = teeName
	// The tee's fds 3, 4 and 6; 5 is its ready pipe.
	cmd.ExtraFiles = []*os.File{as.out, as.errOut, readyW, as.in}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// The tee is the launcher's sibling, a child of the pod's systemd,
	// not of the app: an app that reaps every child would otherwise wait
	// for it. CLONE_PARENT does that in one process start, where an
	// intermediate process that starts the tee and exits took two.
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Cloneflags: unix.CLONE_PARENT}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		as.closeAll()
		return err
	}
	_ = cmd.Process.Release()
	// The app may exit at once, and systemd then sends SIGTERM to what
	// is left of the unit: wait until the tee ignores it (and, for an
	// attachable app, listens).
	if _, err := readyR.Read(make([]byte, 1)); err != nil {
		as.closeAll()
		return fmt.Errorf("tee did not start: %w", err)
	}
	return as.install()
}

// Tee is the tee mode: fd 3 is the app's stdout, fd 4 its stderr, fd 5
// is closed with a byte once SIGTERM is ignored; each goes to our own
// stdout/stderr (the journal) and into the app's FIFO for the run
// entrypoint.
//
// systemd gives the unit one journal stream for both (fd 2 is fd 1), so
// the journal gets whole lines, one stream's at a time, each with a
// syslog priority prefix that journald takes as the record's PRIORITY:
// 6 (info) for stdout, 3 (err) for stderr, as Docker's and Podman's
// journald drivers have it. That is what tells a reader (rkt-cri, for
// `kubectl logs`) which stream a line came from. A line that starts with a
// priority prefix of its own (sd-daemon(3)) keeps it.
func Tee(args []string) int {
	if len(args) != 2 && len(args) != 3 {
		return 2
	}
	// The tee outlives the app by the time it takes to drain: systemd's
	// SIGTERM to the unit's remaining processes must not cut it short.
	signal.Ignore(unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGPIPE)
	dir, app := args[0], args[1]
	ready := os.NewFile(5, "ready")
	// Non-blocking, so that the files are the runtime poller's: closing
	// one (a terminal hung up by endInput) then ends a read blocked in
	// it, which a blocking fd would keep open.
	_ = unix.SetNonblock(3, true)
	_ = unix.SetNonblock(4, true)
	srcs := []*os.File{os.NewFile(3, "stdout"), os.NewFile(4, "stderr")}
	var srv *attachServer
	tty := false
	if len(args) == 3 {
		s, err := parseStreams(args[2])
		if err == nil {
			var in, master *os.File
			if s.Stdin == pod.StreamStream {
				in = os.NewFile(6, "stdin")
			}
			if s.Stdout == pod.StreamTTY {
				master, tty = srcs[0], true
			}
			srv, err = serveAttach(dir, app, s, in, master)
		}
		if err != nil {
			// No byte on ready: the launcher reports the failure and
			// the app does not start.
			fmt.Fprintf(os.Stderr, "iotee: %s: %v\n", app, err)
			return 1
		}
	}
	_, _ = ready.Write([]byte{1})
	ready.Close()
	var wg sync.WaitGroup
	var journalMu sync.Mutex
	for i, s := range []string{"stdout", "stderr"} {
		src := srcs[i]
		journal := &journalLines{w: os.NewFile(uintptr(1+i), s), mu: &journalMu, prefix: []byte("<6>"), stripCR: tty}
		if s == "stderr" {
			journal.prefix = []byte("<3>")
		}
		fifo := openFIFO(filepath.Join(dir, app+"."+s))
		clients := srv.hubFor(s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tee(src, journal, fifo, clients)
		}()
	}
	wg.Wait()
	srv.close()
	return 0
}

// journalLineMax is where a long line is cut, priority prefix included:
// the pod's journald has it as LineMax (journaldConf), so a piece of
// exactly this length, sent without a newline, fills journald's line
// buffer and is recorded with _LINE_BREAK=line-max, which rkt-cri turns
// into the CRI's partial-line tag. (A whole line of exactly this length
// is recorded so too: journald cannot tell it from a piece.)
const journalLineMax = 48 << 10

// journalPiecesMax bounds the pieces of one long line held back until
// the line ends (see journalLines.pieces).
const journalPiecesMax = 256 << 10

// journalLines writes an output stream to the journal stream in whole
// lines, each with its stream's priority prefix, under mu (shared with the
// other stream, which writes to the same socket).
type journalLines struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix []byte
	// stripCR drops the carriage return before each line's end, which
	// a terminal's line discipline adds.
	stripCR bool
	line    []byte // the unfinished line, prefix included
	// pieces are the cut pieces of the unfinished line, held back until
	// it ends (up to journalPiecesMax), so that they reach the journal
	// together: the other stream's lines then fall between lines, not
	// inside one.
	pieces []byte
	out    []byte // reused for the whole lines of one add
	broken bool   // the journal went away
}

func (j *journalLines) add(p []byte) {
	out := j.out[:0]
	for len(p) > 0 {
		if len(j.line) == 0 && !hasPriority(p) {
			j.line = append(j.line, j.prefix...)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 || len(j.line)+i >= journalLineMax {
			n := len(p)
			if room := journalLineMax - len(j.line); n > room {
				n = room
			}
			j.line = append(j.line, p[:n]...)
			p = p[n:]
			if len(j.line) >= journalLineMax {
				j.pieces = append(j.pieces, j.line...)
				j.line = j.line[:0]
				if len(j.pieces) >= journalPiecesMax {
					out = append(out, j.pieces...)
					j.pieces = j.pieces[:0]
				}
			}
			continue
		}
		j.line = append(j.line, p[:i+1]...)
		p = p[i+1:]
		if n := len(j.line); j.stripCR && n >= 2 && j.line[n-2] == '\r' {
			j.line = append(j.line[:n-2], '\n')
		}
		out = append(append(out, j.pieces...), j.line...)
		j.pieces = j.pieces[:0]
		j.line = j.line[:0]
	}
	j.flush(out)
	j.out = out
}

// close writes what is left of an unfinished line.
func (j *journalLines) close() {
	out := j.pieces
	if len(j.line) > 0 {
		out = append(append(out, j.line...), '\n')
	}
	j.flush(out)
	j.pieces, j.line = nil, nil
}

func (j *journalLines) flush(b []byte) {
	if len(b) == 0 || j.broken {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(b); err != nil {
		j.broken = true
	}
}

// hasPriority tells whether p starts with a syslog priority prefix such
// as "<4>", which journald reads as the line's priority.
func hasPriority(p []byte) bool {
	return len(p) >= 3 && p[0] == '<' && p[1] >= '0' && p[1] <= '7' && p[2] == '>'
}

// openFIFO opens the run entrypoint's FIFO for writing, or returns nil if
// nobody reads it (the run entrypoint is gone): then the app's output
// still reaches the journal.
func openFIFO(path string) *os.File {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// Blocking writes: a slow reader slows the app, as a terminal would.
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), path)
}

// tee copies src to the journal, the run entrypoint's FIFO and attached
// clients until src ends (for a terminal's master: EIO once the app and
// everything it started are gone).
func tee(src io.Reader, journal *journalLines, fifo *os.File, clients *hub) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			clients.send(buf[:n])
			if fifo != nil {
				if _, werr := fifo.Write(buf[:n]); werr != nil {
					fifo.Close()
					fifo = nil
				}
			}
			journal.add(buf[:n])
		}
		if err != nil {
			break
		}
	}
	journal.close()
	if fifo != nil {
		fifo.Close()
	}
}

// Reap is the reaper mode (`/reaper APP`), every app's last ExecStopPost:
// it records the app's exit status from systemd's $EXIT_CODE and
// $EXIT_STATUS in /rkt/status/APP and, once every app of the pod has one,
// has the pod's systemd end the pod (the run entrypoint reads the
// statuses).
func Reap(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: reaper APP")
		return 2
	}
	app := args[0]
	code := exitStatus(os.Getenv("EXIT_CODE"), os.Getenv("EXIT_STATUS"))
	if err := writeFile(filepath.Join("/rkt/status", app), strconv.Itoa(code)); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: %v\n", err)
	}
	_ = os.Remove(filepath.Join(pidsDir, app))
	if _, err := os.Stat(mutableFile); err == nil {
		// A mutable pod outlives its apps: it ends with `rkt stop`.
		return 0
	}
	b, err := os.ReadFile(appsFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reaper: %v\n", err)
		return 1
	}
	apps := strings.Fields(string(b))
	for _, a := range apps {
		if _, err := os.Stat(filepath.Join("/rkt/status", a)); err != nil {
			return 0 // some app still runs
		}
	}
	waitUnitDrained(2 * time.Second)
	// Every app's output is in journald's sockets by now: have it written
	// before the pod goes down, then start the pod's exit path
	// (poweroff.target, see staticUnits) as `rkt stop` does.
	if err := syncJournal(); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: sync journal: %v\n", err)
	}
	// reboot(2) in a PID namespace ends its init at once, reported to
	// nspawn as a power-off: nothing is left to stop gracefully, and
	// systemd's own shutdown (signalling, waiting, a host-wide sync)
	// would cost more than the whole boot.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err == nil {
		return 0
	}
	if err := unix.Kill(1, unix.Signal(sigRTMin+4)); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: end pod: %v\n", err)
		return 1
	}
	return 0
}

// syncJournal is `journalctl --sync` without its start-up cost: one
// varlink call asking journald to write out everything it has received.
func syncJournal() error {
	const sock = "/run/systemd/journal/io.systemd.journal"
	if _, err := os.Stat(sock); err != nil {
		return nil // journald never started: nothing to write out
	}
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(`{"method":"io.systemd.Journal.Synchronize","parameters":{}}` + "\x00")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString(0)
	if err != nil {
		return err
	}
	if strings.Contains(reply, `"error"`) {
		return fmt.Errorf("journald: %s", strings.TrimRight(reply, "\x00"))
	}
	return nil
}

// exitStatus turns systemd's description of how a process ended into a
// shell-style status: the code, or 128+signal.
func exitStatus(how, status string) int {
	switch how {
	case "exited":
		if n, err := strconv.Atoi(status); err == nil {
			return n
		}
	case "killed", "dumped":
		if n := unix.SignalNum("SIG" + status); n != 0 {
			return 128 + int(n)
		}
		if n, err := strconv.Atoi(status); err == nil {
			return 128 + n
		}
	}
	// Never started (a failed pre-start or launch, or stopped first).
	return ExitLaunchFailed
}

// Watch is the watchdog mode (`/podwatch`, rkt-watch.service): it reads
// the FIFO that the run entrypoint holds open for the pod's life; end of
// file means the run entrypoint died without the pod (nspawn's death does
// not end the pod's init), and the pod is stopped as `rkt stop` would.
func Watch() int {
	// Non-blocking open: a blocking one would wait forever for a writer
	// that died before we came up.
	fd, err := unix.Open(aliveFIFO, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0 // started without the run entrypoint's FIFO
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	f := os.NewFile(uintptr(fd), aliveFIFO)
	_, _ = io.Copy(io.Discard, f)
	f.Close()
	_ = unix.Kill(1, unix.Signal(sigRTMin+4))
	return 0
}

// waitUnitDrained waits until the reaper is alone in its unit's cgroup:
// a post-stop handler's output tee may still be draining, and the pod
// ends right after the last reaper.
func waitUnitDrained(max time.Duration) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	var dir string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "name=systemd":
			dir = filepath.Join("/sys/fs/cgroup/systemd", parts[2])
		case parts[0] == "0" && parts[1] == "" && dir == "":
			dir = filepath.Join("/sys/fs/cgroup/unified", parts[2])
			if _, err := os.Stat(dir); err != nil {
				dir = filepath.Join("/sys/fs/cgroup", parts[2])
			}
		}
	}
	if dir == "" {
		return
	}
	self := strconv.Itoa(os.Getpid())
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return
		}
		alone := true
		for _, p := range strings.Fields(string(procs)) {
			if p != self {
				alone = false
			}
		}
		if alone {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}
