package stage1

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/pty"
	"golang.org/x/sys/unix"
)

// How `rkt attach` reaches an app. An app whose streams are attachable
// (pod.Streams) has the launcher's tee serve them: it listens on one Unix
// socket per endpoint in /rkt/iomux/APP.attach/ (tty, stdin, stdout,
// stderr, and tty.size for a terminal's size), copies everything the app
// writes to every client connected to that endpoint (after one attachAck
// byte; and to the journal, as for every app), and what clients write to
// the app's input: a pipe
// in stream mode, the master side of the app's own pseudo-terminal in tty
// mode. The attach entrypoint, run by stage0 on the host in the pod's
// mount namespace, connects to those sockets. Nothing is buffered for
// clients not connected yet: attach shows output from the moment it
// attaches, as a terminal would.

// attachEnv carries an app's stream modes (formatStreams) from its unit
// to its launcher.
const attachEnv = "RKT_ATTACH"

// sizeSocket is the tty endpoint's companion: clients write "ROWS COLS\n"
// lines to it, and the tee sets the terminal's size.
const sizeSocket = "tty.size"

// attachDir is where the tee puts app's sockets, relative to the stage1
// root.
func attachDir(app string) string { return filepath.Join(iomuxDir, app+".attach") }

// formatStreams writes s as "STDIN,STDOUT,STDERR[,once]".
func formatStreams(s pod.Streams) string {
	v := string(s.Stdin) + "," + string(s.Stdout) + "," + string(s.Stderr)
	if s.StdinOnce {
		v += ",once"
	}
	return v
}

// parseStreams reads formatStreams' output.
func parseStreams(v string) (pod.Streams, error) {
	f := strings.Split(v, ",")
	once := len(f) == 4 && f[3] == "once"
	if once {
		f = f[:3]
	}
	if len(f) != 3 {
		return pod.Streams{}, fmt.Errorf("stream modes %q: want STDIN,STDOUT,STDERR[,once]", v)
	}
	var a types.Annotations
	for i, n := range []string{pod.AnnotationStdin, pod.AnnotationStdout, pod.AnnotationStderr} {
		a.Set(types.ACIdentifier(n), f[i])
	}
	if once {
		a.Set(pod.AnnotationStdinOnce, "true")
	}
	return pod.AppStreams(a)
}

// The launcher's side.

// appStreams are the files the launcher gives the app and the tee.
type appStreams struct {
	// For the tee: the app's output (a pipe, or the terminal's master),
	// its error output, and the write end of its input pipe (stream
	// mode) or nil.
	out, errOut, in *os.File
	// For the app: what becomes its fd 0, 1 and 2; nil keeps the
	// launcher's own.
	stdin, stdout, stderr *os.File
	// tty is the terminal's slave side, which the launcher makes its
	// controlling terminal.
	tty *os.File
}

// openStreams makes the pipes (and terminal) for streams s; nil s means
// the default: output and error output through the tee, no input.
func openStreams(s *pod.Streams) (*appStreams, error) {
	as := &appStreams{}
	fail := func(err error) (*appStreams, error) {
		as.closeAll()
		return nil, err
	}
	var err error
	if s != nil && s.Stdout == pod.StreamTTY {
		if as.out, as.tty, err = openPTY(); err != nil {
			return fail(fmt.Errorf("terminal: %w", err))
		}
		as.stdin, as.stdout = as.tty, as.tty
	} else {
		if as.out, as.stdout, err = os.Pipe(); err != nil {
			return fail(err)
		}
	}
	if as.errOut, as.stderr, err = os.Pipe(); err != nil {
		return fail(err)
	}
	if s != nil && s.Stderr == pod.StreamTTY {
		// The tee's stderr pipe then sees end of file at once.
		as.stderr.Close()
		as.stderr = as.tty
	}
	if s != nil && s.Stdin == pod.StreamStream {
		if as.stdin, as.in, err = os.Pipe(); err != nil {
			return fail(err)
		}
	}
	return as, nil
}

// install makes the app's ends this process's fd 0-2 (and the terminal
// its controlling one), and closes what the tee holds.
func (as *appStreams) install() error {
	for _, f := range []*os.File{as.out, as.errOut, as.in} {
		if f != nil {
			f.Close()
		}
	}
	if as.tty != nil {
		// systemd made the launcher a session leader without a
		// terminal; setsid only matters when something else started it.
		_, _ = unix.Setsid()
		if err := unix.IoctlSetInt(int(as.tty.Fd()), unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("controlling terminal: %w", err)
		}
	}
	seen := map[*os.File]bool{}
	for fd, f := range []*os.File{as.stdin, as.stdout, as.stderr} {
		if f == nil {
			continue
		}
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return err
		}
		seen[f] = true
	}
	for f := range seen {
		f.Close()
	}
	return nil
}

func (as *appStreams) closeAll() {
	for _, f := range []*os.File{as.out, as.errOut, as.in, as.stdin, as.stdout, as.stderr, as.tty} {
		if f != nil {
			f.Close()
		}
	}
}

// openPTY opens the app's pseudo-terminal, 24x80 until a client says
// otherwise, and returns its master and slave sides.
func openPTY() (master, slave *os.File, err error) {
	if master, slave, err = pty.Open(); err != nil {
		return nil, nil, err
	}
	_ = pty.SetSize(master, 24, 80)
	return master, slave, nil
}

// The tee's side.

// attachServer serves an app's endpoints.
type attachServer struct {
	dir       string
	listeners []net.Listener
	hubs      map[string]*hub
	// input is where what clients type goes: the stdin pipe or the
	// terminal's master; inputMu keeps one client's write whole.
	input   *os.File
	inputMu sync.Mutex
	master  *os.File
	// once ends the app's input when the first client's input ends
	// (pod.Streams.StdinOnce).
	once      bool
	inputDone sync.Once
}

// serveAttach starts listening on the endpoints of s in dir/APP.attach.
// in is the app's input pipe (stream mode), master its terminal (tty).
func serveAttach(dir, app string, s pod.Streams, in, master *os.File) (*attachServer, error) {
	a := &attachServer{dir: filepath.Join(dir, app+".attach"), hubs: map[string]*hub{}, master: master, once: s.StdinOnce}
	a.input = in
	if master != nil {
		a.input = master
	}
	// The sockets are made in a directory of their own and it is renamed
	// into place: a client that finds the directory finds every socket.
	building := a.dir + ".new"
	_ = os.RemoveAll(a.dir)
	_ = os.RemoveAll(building)
	if err := os.Mkdir(building, 0o700); err != nil {
		return nil, err
	}
	endpoints := s.Endpoints()
	if master != nil {
		endpoints = append(endpoints, sizeSocket)
	}
	for _, e := range endpoints {
		if e == pod.EndpointTTY || e == pod.EndpointStdout || e == pod.EndpointStderr {
			a.hubs[e] = newHub()
		}
	}
	// Every hub exists before the first socket does: a client may
	// connect as soon as one is there.
	for _, e := range endpoints {
		l, err := net.Listen("unix", filepath.Join(building, e))
		if err != nil {
			a.close()
			_ = os.RemoveAll(building)
			return nil, fmt.Errorf("endpoint %s: %w", e, err)
		}
		// The path changes with the directory's rename; close removes
		// the directory instead.
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		a.listeners = append(a.listeners, l)
	}
	if err := os.Rename(building, a.dir); err != nil {
		a.close()
		_ = os.RemoveAll(building)
		return nil, err
	}
	for i, e := range endpoints {
		go a.accept(e, a.listeners[i])
	}
	return a, nil
}

// hubFor is the hub of an output stream ("stdout" carries the terminal's
// output in tty mode), or nil if nobody can attach to it.
func (a *attachServer) hubFor(stream string) *hub {
	if a == nil {
		return nil
	}
	if stream == pod.EndpointStdout && a.master != nil {
		return a.hubs[pod.EndpointTTY]
	}
	return a.hubs[stream]
}

func (a *attachServer) accept(endpoint string, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		switch endpoint {
		case pod.EndpointStdin:
			go func() {
				a.copyInput(c)
				c.Close()
			}()
		case pod.EndpointTTY:
			// A client whose input ends (a pipe) still reads the
			// terminal's output: it is dropped when a write to it
			// fails, not when its input ends.
			a.hubs[endpoint].add(c, func() { a.copyInput(c) }, false)
		case sizeSocket:
			go a.resize(c)
		default:
			a.hubs[endpoint].add(c, func() { _, _ = io.Copy(io.Discard, c) }, true)
		}
	}
}

// copyInput passes what one client writes to the app's input, until
// the client closes its side. The app's input then stays open for
// others, unless it is to end with the first client's (once).
func (a *attachServer) copyInput(c net.Conn) {
	if a.once {
		defer a.endInput()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			a.inputMu.Lock()
			_, werr := a.input.Write(buf[:n])
			a.inputMu.Unlock()
			if werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
}

// endInput ends the app's input: its stdin pipe is closed, or its
// terminal hung up (the master closed, which also ends the tee's reading
// of it).
func (a *attachServer) endInput() {
	a.inputDone.Do(func() {
		a.inputMu.Lock()
		defer a.inputMu.Unlock()
		a.input.Close()
	})
}

// resize sets the terminal's size from each "ROWS COLS" line a client
// sends.
func (a *attachServer) resize(c net.Conn) {
	defer c.Close()
	var rows, cols uint16
	for {
		if _, err := fmt.Fscanf(c, "%d %d\n", &rows, &cols); err != nil {
			return
		}
		_ = pty.SetSize(a.master, rows, cols)
	}
}

// close stops listening, lets every client read what it has been sent,
// then hangs up on it, and removes the sockets.
func (a *attachServer) close() {
	if a == nil {
		return
	}
	for _, l := range a.listeners {
		l.Close()
	}
	for _, h := range a.hubs {
		h.close()
	}
	for _, h := range a.hubs {
		h.wait()
	}
	_ = os.RemoveAll(a.dir)
}

// hub copies one output stream to the clients attached to it. A client
// that cannot keep up loses its connection rather than slow the app.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]bool
	closed  bool
	writers sync.WaitGroup
}

type subscriber struct {
	c  net.Conn
	ch chan []byte
}

// attachAck is the byte an output endpoint sends first, once the client
// is registered: a client that waits for it before sending input misses
// none of the output that input causes.
const attachAck = 0

// subscriberQueue is how many writes a client may lag behind.
const subscriberQueue = 256

// subscriberWriteTimeout is how long one write to a client may take.
const subscriberWriteTimeout = 10 * time.Second

func newHub() *hub { return &hub{subs: map[*subscriber]bool{}} }

// add attaches c. readSide runs on its own goroutine until the client
// stops writing; with hangUp, that ends the client's subscription.
func (h *hub) add(c net.Conn, readSide func(), hangUp bool) {
	s := &subscriber{c: c, ch: make(chan []byte, subscriberQueue)}
	// The client's first byte says it is registered: what the app
	// writes from then on reaches it (see attachAck).
	s.ch <- []byte{attachAck}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.subs[s] = true
	h.writers.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.writers.Done()
		defer c.Close()
		for b := range s.ch {
			_ = c.SetWriteDeadline(time.Now().Add(subscriberWriteTimeout))
			if _, err := c.Write(b); err != nil {
				h.remove(s)
				for range s.ch {
				}
				return
			}
		}
	}()
	go func() {
		readSide()
		if hangUp {
			h.remove(s)
		}
	}()
}

// send queues a copy of b for every client.
func (h *hub) send(b []byte) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	cp := append([]byte(nil), b...)
	for s := range h.subs {
		select {
		case s.ch <- cp:
		default:
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

func (h *hub) remove(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s] {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}

// wait waits until every client has been sent what was queued for it.
func (h *hub) wait() { h.writers.Wait() }

// dialEndpoint connects to one endpoint of app, through the directory's
// fd so that the socket path stays short whatever the pod's path.
func dialEndpoint(dirFd int, endpoint string) (*net.UnixConn, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: "/proc/self/fd/" + strconv.Itoa(dirFd) + "/" + endpoint, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("no attach endpoint %s: %w", endpoint, err)
	}
	return c, nil
}
