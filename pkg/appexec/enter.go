package appexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"github.com/rktng/rkt/pkg/cgroup"
	"golang.org/x/sys/unix"
)

// ErrEnterUserNS: the target runs in a user namespace of its own, which a
// Go process (always multi-threaded) cannot join, and no EnterConfig.Nsenter
// was given; entering it without would run the command as the host's root.
var ErrEnterUserNS = errors.New("cannot enter an app in a private user namespace")

// EnterConfig says which app process to enter and what to run there.
type EnterConfig struct {
	// PID is a process of the app (as the caller sees it), whose
	// namespaces, root directory and cgroups the command joins.
	PID int
	// App is the app's own Config with Exec replaced by the command to
	// run (Env and WorkingDir as the caller wants them). Its Rootfs is
	// ignored: the command gets the root directory of PID. Its
	// restrictions (capabilities, seccomp, no_new_privs, identity) are
	// applied exactly as for the app.
	App Config
	// Stdin, Stdout, Stderr default to the caller's.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Nsenter is the command line (program and leading arguments) of
	// util-linux's nsenter: the way into an app whose pod has a user
	// namespace of its own (--private-users), since setns(2) refuses to
	// move a multithreaded process, as every Go process is, into a user
	// namespace. nsenter, single-threaded C, joins them all and starts
	// this binary inside. Without it such an app is refused.
	Nsenter []string
}

// The namespaces an entered command joins, in the order they are joined;
// the mount namespace comes last, since /proc/PID/ns of the others must
// still be reachable through the caller's /proc.
var enterNamespaces = []struct {
	name string
	flag int
}{
	{"cgroup", unix.CLONE_NEWCGROUP},
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
	{"net", unix.CLONE_NEWNET},
	{"pid", unix.CLONE_NEWPID},
	{"mnt", unix.CLONE_NEWNS},
}

// enterChildArg0 is the argv[0] with which Enter re-executes the current
// binary inside the app's namespaces; the init function below recognises
// it before main runs, in any binary that links this package.
const enterChildArg0 = "rkt-appexec-enter"

// enterChildEnv marks the same child when nsenter starts it (as
// /proc/self/fd/N, with no say over its argv[0]).
const enterChildEnv = "_RKT_APPEXEC_ENTER"

// Fds passed to the re-executed child.
const (
	enterConfigFd = 3
	enterRootFd   = 4
)

func init() {
	if len(os.Args) > 0 && os.Args[0] == enterChildArg0 || os.Getenv(enterChildEnv) == "1" {
		os.Exit(enterChild())
	}
}

// Enter runs ec.App.Exec inside the running app process ec.PID: in its
// cgroups, its mount, PID, network, IPC, UTS and cgroup namespaces, its
// root directory, with the app's identity, capability sets, no_new_privs
// and seccomp filter. It returns the command's exit status (128+signal
// when killed). This is `rkt enter` for both stage1 flavors; the command
// never has more than the app (rkt's enter did: CVE-2019-10144/10145/10147).
//
// How: the caller joins the app's cgroups; a locked OS thread unshares
// its filesystem attributes (so the kernel lets it change mount
// namespace though the process has other threads), joins the namespaces
// with setns, and forks a fresh copy of this binary from there, which
// therefore starts inside all of them, including the PID namespace that
// setns only applies to children. That copy chroots into the app's root
// (passed as an fd) and calls Exec. An app in a user namespace of its own
// is entered through nsenter instead (see EnterConfig.Nsenter).
func Enter(ec EnterConfig) (int, error) {
	cfg := ec.App
	cfg.Rootfs = ""
	cfg.ReadOnlyRootfs = false // the app's root is already so if it should be
	// The app's cgroups are joined below from the process's own view
	// (/proc/PID/cgroup), whatever paths the app's config names.
	cfg.CgroupDirs = nil
	// The masks and read-only paths are mounts the app's namespace
	// already has; making them again would stack mounts at every enter.
	cfg.ReadOnlyPaths, cfg.MaskedPaths = nil, nil
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if ec.PID <= 0 {
		return 0, fmt.Errorf("%w: enter needs the app's PID", ErrBadConfig)
	}
	proc := filepath.Join("/proc", strconv.Itoa(ec.PID))
	sameUser, err := sameNS(proc, "user")
	if err != nil {
		return 0, fmt.Errorf("enter: %w", err)
	}
	if !sameUser && len(ec.Nsenter) == 0 {
		return 0, ErrEnterUserNS
	}
	// Cgroups first, while the host's cgroup filesystem is in view; the
	// child inherits them.
	if err := cgroup.JoinProcess(ec.PID); err != nil {
		return 0, fmt.Errorf("enter: join the app's cgroups: %w", err)
	}

	root, err := os.OpenFile(filepath.Join(proc, "root"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("enter: root of process %d: %w", ec.PID, err)
	}
	defer root.Close()
	var nsFiles []*os.File
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	var nsFlags []int
	var nsNames []string
	for _, ns := range enterNamespaces {
		same, err := sameNS(proc, ns.name)
		if err != nil {
			if ns.name == "cgroup" && errors.Is(err, os.ErrNotExist) {
				continue // kernel without cgroup namespaces
			}
			return 0, fmt.Errorf("enter: %w", err)
		}
		if same && ns.name != "mnt" {
			continue
		}
		f, err := os.Open(filepath.Join(proc, "ns", ns.name))
		if err != nil {
			return 0, fmt.Errorf("enter: %w", err)
		}
		nsFiles = append(nsFiles, f)
		nsFlags = append(nsFlags, ns.flag)
		nsNames = append(nsNames, ns.name)
	}

	var exe *os.File
	if !sameUser {
		if exe, err = os.Open("/proc/self/exe"); err != nil {
			return 0, fmt.Errorf("enter: %w", err)
		}
		defer exe.Close()
	}

	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer cfgR.Close()
	stdin, stdout, stderr := ec.Stdin, ec.Stdout, ec.Stderr
	if stdin == nil {
		stdin = os.Stdin
	}
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}

	// The namespaces are joined by one thread that is thrown away at the
	// end (never unlocked): the process's other threads stay where they
	// are. The same thread waits for the child, because the kernel sends
	// the parent-death signal when the forking thread exits.
	type result struct {
		cmd  *exec.Cmd
		code int
		err  error
	}
	startedc := make(chan result, 1)
	donec := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var cmd *exec.Cmd
		var err error
		if sameUser {
			cmd, err = joinAndFork(nsFiles, nsFlags, cfgR, root)
		} else {
			cmd = nsenterCommand(ec.Nsenter, ec.PID, nsNames, cfgR, root, exe)
		}
		if err == nil {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
			if err = cmd.Start(); err != nil {
				err = fmt.Errorf("enter: start in the app's namespaces (is /proc mounted there?): %w", err)
			}
		}
		if err != nil {
			startedc <- result{err: err}
			close(donec)
			return
		}
		startedc <- result{cmd: cmd}
		err = cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			ws := ee.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				donec <- result{code: 128 + int(ws.Signal())}
			} else {
				donec <- result{code: ws.ExitStatus()}
			}
		case err != nil:
			donec <- result{err: fmt.Errorf("enter: %w", err)}
		default:
			donec <- result{}
		}
	}()
	st := <-startedc
	if st.err != nil {
		cfgW.Close()
		return 0, st.err
	}
	cfgR.Close()
	data, _ := json.Marshal(cfg)
	_, werr := cfgW.Write(data)
	cfgW.Close()
	if werr != nil {
		_ = st.cmd.Process.Kill()
	}

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigc)
	for {
		select {
		case s := <-sigc:
			_ = st.cmd.Process.Signal(s)
		case r := <-donec:
			return r.code, r.err
		}
	}
}

// joinAndFork moves the calling thread (locked, and never unlocked: it is
// thrown away) into the namespaces and returns the command that starts a
// fresh copy of this binary from there, inside all of them.
func joinAndFork(nsFiles []*os.File, nsFlags []int, cfgR, root *os.File) (*exec.Cmd, error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, fmt.Errorf("enter: unshare filesystem attributes: %w", err)
	}
	for i, f := range nsFiles {
		if err := unix.Setns(int(f.Fd()), nsFlags[i]); err != nil {
			return nil, fmt.Errorf("enter: join %s: %w", f.Name(), err)
		}
	}
	return &exec.Cmd{
		// Resolved in the app's mount namespace, by the child, which is
		// in the app's PID namespace: its own executable.
		Path:       "/proc/self/exe",
		Args:       []string{enterChildArg0},
		Env:        []string{},
		ExtraFiles: []*os.File{cfgR, root},
		// No Pdeathsig here: Go's child checks that getppid() is
		// unchanged after setting it, and in the app's PID namespace
		// the parent is invisible (0), so it would kill itself.
		// enterChild sets it instead.
	}, nil
}

// nsenterCommand returns the command by which nsenter joins the user
// namespace of process pid and then the other namespaces named (it owns
// them, so they must come after it), forks into the PID namespace and
// starts this binary there, which nsenter reaches through an inherited
// descriptor, exe (its path on the host means nothing in the app's mount
// namespace). nsenter makes the command root of the user namespace, with
// every capability there: enterChild then drops to the app's own.
func nsenterCommand(nsenter []string, pid int, names []string, cfgR, root, exe *os.File) *exec.Cmd {
	args := append(append([]string{}, nsenter...), "--target="+strconv.Itoa(pid), "--user")
	for _, n := range names {
		if n == "mnt" {
			n = "mount"
		}
		args = append(args, "--"+n)
	}
	args = append(args, "--", "/proc/self/fd/5")
	return &exec.Cmd{
		Path:       nsenter[0],
		Args:       args,
		Env:        []string{enterChildEnv + "=1"},
		ExtraFiles: []*os.File{cfgR, root, exe},
		// The forking thread waits for nsenter: when rkt enter dies,
		// nsenter does, and its child (which enterChild gave a parent-
		// death signal) with it.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
}

// sameNS reports whether process proc is in the caller's namespace name.
func sameNS(proc, name string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(filepath.Join(proc, "ns", name), &a); err != nil {
		return false, &os.PathError{Op: "stat", Path: filepath.Join(proc, "ns", name), Err: err}
	}
	if err := unix.Stat(filepath.Join("/proc/self/ns", name), &b); err != nil {
		return false, &os.PathError{Op: "stat", Path: "/proc/self/ns/" + name, Err: err}
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// enterChild runs in the re-executed binary inside the app's namespaces:
// read the config, take the app's root, become the command.
func enterChild() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "enter: %v\n", err)
		return ExitLaunchFailed
	}
	f := os.NewFile(enterConfigFd, "enter-config")
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fail(err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadConfig, err))
	}
	runtime.LockOSThread()
	// The command dies with rkt enter (until a uid change clears this).
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if err := unix.Fchdir(enterRootFd); err != nil {
		return fail(fmt.Errorf("app root: %w", err))
	}
	if err := unix.Chroot("."); err != nil {
		return fail(fmt.Errorf("chroot into the app's root: %w", err))
	}
	unix.Close(enterRootFd)
	c.Rootfs = ""
	return fail(Exec(&c))
}
