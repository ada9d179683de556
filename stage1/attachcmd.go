package stage1

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// attachWait is how long the attach entrypoint waits for an app's
// endpoints to appear: `rkt app start` returns once systemd has the app's
// unit started, which may be just before its launcher has the tee
// listening.
const attachWait = 10 * time.Second

// detachKeys end a terminal attach without touching the app (Docker's
// default: Ctrl-P Ctrl-Q).
var detachKeys = []byte{0x10, 0x11}

// AttachEntrypoint is the attach entrypoint (stage0.EntrypointAttach):
// `attach [--mode=MODE] APP`, run in the pod's mount namespace with the
// pod directory as working directory.
func AttachEntrypoint(ctx context.Context, args []string, stdin, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("attach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "auto", "list, auto, or endpoints separated by commas")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "stage1 attach: usage: attach [--mode=MODE] APP")
		return ExitLaunchFailed
	}
	if err := attach(ctx, fs.Arg(0), *mode, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "stage1 attach: %v\n", err)
		return ExitLaunchFailed
	}
	return 0
}

func attach(ctx context.Context, app, mode string, stdin, stdout, stderr *os.File) error {
	pm, err := readPodManifest(".")
	if err != nil {
		return err
	}
	ra := pm.Apps.Get(types.ACName(app))
	if ra == nil {
		return fmt.Errorf("the pod has no app %q", app)
	}
	s, err := pod.AppStreams(ra.Annotations)
	if err != nil {
		return fmt.Errorf("app %s: %w", app, err)
	}
	have := s.Endpoints()
	if mode == "list" {
		for _, e := range have {
			fmt.Fprintln(stdout, e)
		}
		return nil
	}
	want := have
	if mode != "auto" && mode != "" {
		want = strings.Split(mode, ",")
		for _, e := range want {
			if !contains(have, e) {
				return fmt.Errorf("app %s has no %s endpoint (it has %s)", app, e, strings.Join(have, ", "))
			}
		}
	}
	if len(want) == 0 {
		return fmt.Errorf("app %s has no stream to attach to", app)
	}
	dir, err := openAttachDir(ctx, app)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	conns := map[string]*net.UnixConn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, e := range want {
		if conns[e], err = dialEndpoint(dir, e); err != nil {
			return fmt.Errorf("app %s: %w", app, err)
		}
	}
	// Input only once every output is registered with the tee: output
	// that our input causes must not go to nobody.
	for _, e := range want {
		if e == pod.EndpointStdin {
			continue
		}
		ack := make([]byte, 1)
		_ = conns[e].SetReadDeadline(time.Now().Add(attachWait))
		if _, err := io.ReadFull(conns[e], ack); err != nil || ack[0] != attachAck {
			return fmt.Errorf("app %s: endpoint %s did not answer: %v", app, e, err)
		}
		_ = conns[e].SetReadDeadline(time.Time{})
	}
	if c := conns[pod.EndpointTTY]; c != nil {
		return attachTTY(ctx, dir, c, stdin, stdout)
	}
	return attachStreams(ctx, conns, stdin, stdout, stderr)
}

// openAttachDir opens the app's socket directory, waiting a little for
// it to appear while the app starts.
func openAttachDir(ctx context.Context, app string) (int, error) {
	p := filepath.Join(pod.Stage1RootfsPath("."), attachDir(app))
	deadline := time.Now().Add(attachWait)
	for {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.ENOENT) || time.Now().After(deadline) {
			return -1, fmt.Errorf("app %s is not running (no attach endpoints)", app)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// attachStreams copies stdin to the app's stdin endpoint and its stdout
// and stderr endpoints to ours, until the app's output ends (it exited),
// or, with no output attached, our input does. A signal ends it too; the
// app never sees it.
func attachStreams(ctx context.Context, conns map[string]*net.UnixConn, stdin, stdout, stderr *os.File) error {
	done := make(chan struct{})
	var outputs sync.WaitGroup
	for e, w := range map[string]io.Writer{pod.EndpointStdout: stdout, pod.EndpointStderr: stderr} {
		c := conns[e]
		if c == nil {
			continue
		}
		outputs.Add(1)
		go func() {
			defer outputs.Done()
			_, _ = io.Copy(w, c)
		}()
	}
	inputDone := make(chan struct{})
	if c := conns[pod.EndpointStdin]; c != nil {
		go func() {
			defer close(inputDone)
			_, _ = io.Copy(c, stdin)
			// The app's input stays open for other clients; ours is
			// done.
			_ = c.CloseWrite()
		}()
	} else {
		close(inputDone)
	}
	go func() {
		if len(conns) == 1 && conns[pod.EndpointStdin] != nil {
			<-inputDone
		} else {
			outputs.Wait()
		}
		close(done)
	}()
	return waitAttach(ctx, done)
}

// waitAttach waits for done, or for SIGINT/SIGTERM/SIGHUP (detach).
func waitAttach(ctx context.Context, done <-chan struct{}) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	select {
	case <-done:
	case <-sigs:
	case <-ctx.Done():
	}
	return nil
}

// attachTTY connects our terminal (or whatever stdin and stdout are) to
// the app's. On a terminal: raw mode, its size passed on now and on every
// SIGWINCH, and detachKeys to leave.
func attachTTY(ctx context.Context, dir int, c *net.UnixConn, stdin, stdout *os.File) error {
	term := isTerminal(stdin)
	var detached atomic.Bool
	if term {
		restore, err := makeRaw(stdin)
		if err != nil {
			return err
		}
		defer func() {
			restore()
			if detached.Load() {
				// On a line of its own: the app's last output may have
				// left the cursor anywhere.
				fmt.Fprint(stdout, "\r\nrkt attach: detached; the app goes on\r\n")
			}
		}()
		if size, err := dialEndpoint(dir, sizeSocket); err == nil {
			defer size.Close()
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			defer signal.Stop(winch)
			sendSize(stdin, size)
			go func() {
				for range winch {
					sendSize(stdin, size)
				}
			}()
		}
	}
	done := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(done) }) }
	go func() {
		_, _ = io.Copy(stdout, c)
		finish()
	}()
	go func() {
		if term {
			detached.Store(copyUntilDetach(c, stdin))
			finish()
			return
		}
		_, _ = io.Copy(c, stdin)
		_ = c.CloseWrite()
	}()
	return waitAttach(ctx, done)
}

// copyUntilDetach copies typed input to the app until detachKeys (which
// the app does not get) or the end of input; it says whether the keys
// ended it.
func copyUntilDetach(w io.Writer, r io.Reader) bool {
	buf := make([]byte, 4096)
	matched := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			out := buf[:0:0]
			for _, b := range buf[:n] {
				if b == detachKeys[matched] {
					matched++
					if matched == len(detachKeys) {
						_, _ = w.Write(out)
						return true
					}
					continue
				}
				if matched > 0 {
					// Not the sequence after all: what was held
					// back goes through.
					out = append(out, detachKeys[:matched]...)
					matched = 0
					if b == detachKeys[0] {
						matched = 1
						continue
					}
				}
				out = append(out, b)
			}
			if _, werr := w.Write(out); werr != nil {
				return false
			}
		}
		if err != nil {
			return false
		}
	}
}

// makeRaw puts terminal f in raw mode (as cfmakeraw(3)) and returns what
// restores it.
func makeRaw(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// sendSize passes terminal f's size to the app's terminal.
func sendSize(f *os.File, c net.Conn) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return
	}
	_, _ = fmt.Fprintf(c, "%d %d\n", ws.Row, ws.Col)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
