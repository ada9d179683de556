package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/pty"
	"github.com/rktng/rkt/stage0"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// kubectl exec, attach and port-forward. The CRI's Exec, Attach and
// PortForward calls only return a URL on a streaming server, which the
// kubelet forwards the user's SPDY or WebSocket stream to; that server is
// k8s.io/cri-streaming's (the one containerd and CRI-O use), and it calls
// back into streamRuntime with the stream's ends. Exec is `rkt enter`,
// attach is `rkt attach` (on a pseudo-terminal of our own when the
// container has a terminal, so that rkt attach passes its size on), and
// port-forward dials the port from inside the sandbox's network namespace.

// startStreaming starts the streaming server on addr ("127.0.0.1:0" for
// any free port on the loopback) and returns what stops it.
func (s *Server) startStreaming(addr string) (stop func(), err error) {
	// Listened on here, not by the library's Start: a busy address is an
	// error now rather than a log line later, and the URLs handed out
	// name the port really in use.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	s.streaming = srv
	s.streamingAddr = cfg.Addr
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(l) }()
	return func() { _ = hs.Close() }, nil
}

func (s *Server) runningContainer(id string) (*container, error) {
	c, err := s.container(id)
	if err != nil {
		return nil, err
	}
	if st, err := c.state(); err != nil || !c.sb.running() || st.State != stage0.AppRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", id)
	}
	return c, nil
}

// Exec returns the URL of an exec stream for the kubelet.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if _, err := s.runningContainer(req.ContainerId); err != nil {
		return nil, err
	}
	return s.streaming.GetExec(req)
}

// Attach returns the URL of an attach stream for the kubelet.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if _, err := s.runningContainer(req.ContainerId); err != nil {
		return nil, err
	}
	return s.streaming.GetAttach(req)
}

// PortForward returns the URL of a port-forward stream for the kubelet.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.sandbox(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	if !sb.running() {
		return nil, status.Errorf(codes.FailedPrecondition, "sandbox %s is not running", req.PodSandboxId)
	}
	return s.streaming.GetPortForward(req)
}

// streamRuntime is what the streaming server calls for each stream.
type streamRuntime struct{ s *Server }

// Exec runs cmd in the container through `rkt enter`, with the app's own
// restrictions, and returns its exit status as the streaming server
// expects it (an error with ExitStatus).
func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.s.runningContainer(id)
	if err != nil {
		return err
	}
	args := append(append([]string{}, r.s.cfg.GlobalArgs...), "enter", "--app="+c.app, c.sb.p.UUID)
	e := exec.CommandContext(ctx, r.s.cfg.Rkt, append(args, cmd...)...)
	if tty {
		return exitStatus(runOnPTY(e, in, out, resize))
	}
	return exitStatus(runPiped(e, in, out, errOut))
}

// Attach connects the streams to the container's own through `rkt attach`.
func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.s.runningContainer(id)
	if err != nil {
		return err
	}
	args := append(append([]string{}, r.s.cfg.GlobalArgs...), "attach", "--app="+c.app)
	if !tty {
		var modes []string
		for _, m := range []struct {
			on   bool
			name string
		}{{in != nil, pod.EndpointStdin}, {out != nil, pod.EndpointStdout}, {errOut != nil, pod.EndpointStderr}} {
			if m.on {
				modes = append(modes, m.name)
			}
		}
		args = append(args, "--mode="+strings.Join(modes, ","))
	}
	e := exec.CommandContext(ctx, r.s.cfg.Rkt, append(args, c.sb.p.UUID)...)
	if tty {
		return runOnPTY(e, in, out, resize)
	}
	return runPiped(e, in, out, errOut)
}

// PortForward copies between stream and a connection to port on the
// sandbox's loopback, made from inside its network namespace.
func (r streamRuntime) PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := r.s.sandbox(id)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	if sb.meta.NodeNetwork {
		conn, err = net.DialTimeout("tcp", addr, 10*time.Second)
	} else {
		conn, err = dialInNetns(sb.p, addr)
	}
	if err != nil {
		return fmt.Errorf("port %d of sandbox %s: %w", port, id, err)
	}
	defer conn.Close()
	toPod, fromPod := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(toPod)
	}()
	go func() {
		_, _ = io.Copy(stream, conn)
		close(fromPod)
	}()
	// The pod's side closing ends the forward (the client's side may
	// stay open for good); the client's side closing only ends its half,
	// and the pod's answer still comes back in full.
	select {
	case <-fromPod:
	case <-toPod:
		select {
		case <-fromPod:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	return nil
}

// dialInNetns connects to addr from the pod's network namespace: the one
// its stage1 recorded in the netns file, else its PID 1's.
func dialInNetns(p *pod.Pod, addr string) (net.Conn, error) {
	nsPath := ""
	if b, err := os.ReadFile(filepath.Join(p.Dir, pod.NetnsFile)); err == nil {
		nsPath = strings.TrimSpace(string(b))
	}
	if nsPath == "" {
		pid, err := p.Pid()
		if err != nil {
			return nil, fmt.Errorf("no network namespace: %w", err)
		}
		nsPath = "/proc/" + strconv.Itoa(pid) + "/ns/net"
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, in the pod's namespace, ends
		// with this goroutine instead of running other ones.
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{nil, fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		// The socket belongs to the namespace it was made in, whatever
		// thread uses it later.
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		ch <- result{c, err}
	}()
	res := <-ch
	return res.c, res.err
}

// runPiped runs e with the stream's ends as its standard streams.
func runPiped(e *exec.Cmd, in io.Reader, out, errOut io.WriteCloser) error {
	if out != nil {
		e.Stdout = out
	}
	if errOut != nil {
		e.Stderr = errOut
	}
	var stdin io.WriteCloser
	if in != nil {
		// Not e.Stdin: Wait would wait for a copy blocked reading a
		// client that keeps its input open after the command exited.
		// This copy ends when the stream is closed, after we return.
		var err error
		if stdin, err = e.StdinPipe(); err != nil {
			return err
		}
	}
	if err := e.Start(); err != nil {
		return err
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, in)
			stdin.Close()
		}()
	}
	// Output pipes held by something the command left behind must not
	// keep Wait waiting either.
	e.WaitDelay = time.Second
	return e.Wait()
}

// runOnPTY runs e on a new pseudo-terminal of this host as its
// controlling terminal, copying in to it and its output to out; resize
// events set its size.
func runOnPTY(e *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommandserver.TerminalSize) error {
	master, slave, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	e.Stdin, e.Stdout, e.Stderr = slave, slave, slave
	e.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = e.Start()
	slave.Close()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case size, ok := <-resize:
				if !ok {
					return
				}
				_ = pty.SetSize(master, size.Height, size.Width)
			case <-stop:
				return
			}
		}
	}()
	if in != nil {
		go func() { _, _ = io.Copy(master, in) }()
	}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		// Ends with EIO once every process holding the terminal is gone.
		_, _ = io.Copy(out, master)
	}()
	err = e.Wait()
	copied.Wait()
	return err
}

// exitStatus turns a command's exit into the error the streaming server
// reports to the client as the command's exit code.
func exitStatus(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}
