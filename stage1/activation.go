package stage1

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"
)

// Socket activation: a pod run by a systemd service that a socket unit
// starts. systemd passes the sockets to rkt run (LISTEN_FDS, from fd 3),
// rkt exec's the run entrypoint, which keeps them for the pod's life and
// hands them, over a Unix socket in the stage1 root (SCM_RIGHTS), to the
// launcher of the app that takes them, each time it starts. The launcher
// puts them at fd 3 and up before anything else opens a file, and the app
// it becomes gets them with LISTEN_FDS and LISTEN_PID (pkg/appexec). An app
// takes sockets when its manifest has ports with socketActivated set, as
// in rkt. The pod's systemd never sees them: it would adopt a passed
// socket only for a socket unit loaded before it looks, and ours are not.

// listenEnv, in an app's unit, names the socket its launcher gets its
// passed sockets from (relative to the stage1 root).
const listenEnv = "RKT_LISTEN"

// listenSocketPath is where app's launcher asks for its sockets.
func listenSocketPath(app string) string { return filepath.Join(iomuxDir, app+".listen") }

// passedSocket is one socket systemd passed to rkt run.
type passedSocket struct {
	f *os.File
	// addr is the address it is bound to, for messages; port its port
	// (0 for a Unix socket).
	addr string
	port int
}

// passedSockets takes the sockets this process was passed, if any, and
// removes LISTEN_* from its environment.
func passedSockets() ([]passedSocket, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if pid != strconv.Itoa(os.Getpid()) || fds == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q is not a count of sockets", fds)
	}
	var out []passedSocket
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
		s := passedSocket{f: os.NewFile(uintptr(fd), "activated-"+strconv.Itoa(fd))}
		if _, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
			return nil, fmt.Errorf("passed fd %d is not a socket: %w", fd, err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return nil, fmt.Errorf("passed fd %d: %w", fd, err)
		}
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			s.addr, s.port = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)), a.Port
		case *unix.SockaddrInet6:
			s.addr, s.port = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)), a.Port
		case *unix.SockaddrUnix:
			s.addr = a.Name
		default:
			return nil, fmt.Errorf("passed fd %d: address family not supported", fd)
		}
		out = append(out, s)
	}
	return out, nil
}

// errNoActivatedApp: sockets were passed but no app takes them.
var errNoActivatedApp = errors.New("no app takes them")

// assignSockets decides which app gets each passed socket: all of them
// when one app of the pod has socket-activated ports, else the app whose
// socket-activated port has the socket's port number.
func assignSockets(pm *schema.PodManifest, socks []passedSocket) (map[string][]passedSocket, error) {
	if len(socks) == 0 {
		return nil, nil
	}
	ports := map[string][]int{}
	var apps []string
	for _, ra := range pm.Apps {
		if ra.App == nil {
			continue
		}
		for _, p := range ra.App.Ports {
			if p.SocketActivated {
				name := ra.Name.String()
				if len(ports[name]) == 0 {
					apps = append(apps, name)
				}
				ports[name] = append(ports[name], int(p.Port))
			}
		}
	}
	out := map[string][]passedSocket{}
	switch len(apps) {
	case 0:
		return nil, fmt.Errorf("rkt was passed %d socket(s) (socket activation) but %w: give an app's manifest a port with socketActivated", len(socks), errNoActivatedApp)
	case 1:
		out[apps[0]] = socks
		return out, nil
	}
	for _, s := range socks {
		owner := ""
		for _, a := range apps {
			for _, p := range ports[a] {
				if p == s.port && s.port != 0 {
					if owner != "" && owner != a {
						return nil, fmt.Errorf("passed socket %s: apps %s and %s both have a socket-activated port %d", s.addr, owner, a, p)
					}
					owner = a
				}
			}
		}
		if owner == "" {
			return nil, fmt.Errorf("passed socket %s: %w: several apps have socket-activated ports and none has port %d", s.addr, errNoActivatedApp, s.port)
		}
		out[owner] = append(out[owner], s)
	}
	return out, nil
}

// socketServer hands each app's passed sockets to its launcher.
type socketServer struct {
	listeners []*net.UnixListener
}

// serveSockets listens, for each app given sockets, at its
// listenSocketPath in the stage1 root s1.
func serveSockets(s1 string, assigned map[string][]passedSocket) (*socketServer, error) {
	srv := &socketServer{}
	for app, socks := range assigned {
		dir, err := os.Open(filepath.Join(s1, iomuxDir))
		if err != nil {
			srv.close()
			return nil, err
		}
		// Through the directory's fd: the pod's path may be longer than
		// a socket address holds.
		p := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + filepath.Base(listenSocketPath(app))
		_ = os.Remove(p)
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		dir.Close()
		if err != nil {
			srv.close()
			return nil, fmt.Errorf("app %s: %w", app, err)
		}
		l.SetUnlinkOnClose(false)
		srv.listeners = append(srv.listeners, l)
		fds := make([]int, len(socks))
		for i, s := range socks {
			fds[i] = int(s.f.Fd())
		}
		go serveFds(l, fds)
	}
	return srv, nil
}

// serveFds sends fds to every client, in one message whose one byte
// counts them.
func serveFds(l *net.UnixListener, fds []int) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		_, _, _ = c.WriteMsgUnix([]byte{byte(len(fds))}, unix.UnixRights(fds...), nil)
		c.Close()
	}
}

func (s *socketServer) close() {
	if s == nil {
		return
	}
	for _, l := range s.listeners {
		l.Close()
	}
}

// TakePassedSockets is the launcher's first step for an app given sockets
// (listenEnv set): it fetches them from the run entrypoint and puts them
// at fd 3 and up, close-on-exec until pkg/appexec execs the app, with
// LISTEN_FDS and LISTEN_PID set. It uses raw system calls only, and runs
// before anything else opens a file: fd 3 and up must be free.
func TakePassedSockets(path string) error {
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if sock != 3 {
		unix.Close(sock)
		what, _ := os.Readlink("/proc/self/fd/3")
		return fmt.Errorf("fd 3 is already in use (%s)", what)
	}
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(sock)
		return fmt.Errorf("connect %s: %w", path, err)
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*253))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	unix.Close(sock)
	if err != nil {
		return fmt.Errorf("receive sockets: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || n != 1 || len(msgs) != 1 {
		return fmt.Errorf("receive sockets: bad message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != int(buf[0]) {
		return fmt.Errorf("receive sockets: want %d, got %d", buf[0], len(fds))
	}
	// Received in ascending order above fd 3 (the closed socket's):
	// moving each down to 3+i never overwrites one still to be moved.
	ours := map[int]bool{}
	for _, fd := range fds {
		ours[fd] = true
	}
	for i, fd := range fds {
		want := 3 + i
		if fd == want {
			continue
		}
		if fd < want {
			return fmt.Errorf("receive sockets: fd %d is below %d", fd, want)
		}
		if _, err := unix.FcntlInt(uintptr(want), unix.F_GETFD, 0); err == nil && !ours[want] {
			return fmt.Errorf("receive sockets: fd %d is already in use", want)
		}
		if err := unix.Dup3(fd, want, unix.O_CLOEXEC); err != nil {
			return err
		}
		unix.Close(fd)
	}
	os.Setenv("LISTEN_FDS", strconv.Itoa(len(fds)))
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	os.Unsetenv("LISTEN_FDNAMES")
	return nil
}
