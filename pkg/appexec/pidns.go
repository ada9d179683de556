package appexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// An app with Config.PrivatePIDNamespace runs in a PID namespace of its
// own, which it sees alone, as a Kubernetes container does by default:
//
//	launcher (the unit's main process, in the pod's PID namespace)
//	 └ init  (PID 1 of the new namespace: a fresh /proc for the app's
//	   │      root, signals passed on, orphans reaped)
//	   └ launcher again, which becomes the app
//
// The app is not the namespace's PID 1, so signals it has no handler for
// act on it as anywhere else (PID 1 ignores them), and its exit status
// comes back up the chain as the unit's. setns(2) and fork are not for
// a Go process: each step is a fresh copy of this binary, started by
// exec with the namespace flag.

const (
	// pidInitArg0 is the argv[0] of the namespace's init; the init
	// function below recognises it in any binary linking this package.
	pidInitArg0 = "rkt-appexec-pidinit"
	// pidInnerEnv marks the launcher started by the init: it launches
	// the app where it is.
	pidInnerEnv = "_RKT_APPEXEC_IN_PIDNS"
)

// forwarded are the signals the launcher and the init pass on to the
// process below them.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

func init() {
	if len(os.Args) == 2 && os.Args[0] == pidInitArg0 {
		os.Exit(pidInit(os.Args[1], os.Stderr))
	}
	if os.Getenv(pidInnerEnv) == "1" && os.Getenv("LISTEN_FDS") != "" {
		// The launcher that becomes the app: socket activation's
		// LISTEN_PID names it, by its PID in its namespace (which the
		// init's threads have taken the first numbers of).
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
}

// NeedsPIDNamespace says whether this launcher must first make the app's
// PID namespace: the app asks for one, and it has not been made yet.
func (c *Config) NeedsPIDNamespace() bool {
	return c.PrivatePIDNamespace && os.Getenv(pidInnerEnv) == ""
}

// LaunchInPIDNamespace is the first launcher's part for an app that
// NeedsPIDNamespace, the Config at path: it starts the init in a new PID
// namespace with what the app is to inherit (standard streams, passed
// sockets), passes signals on and returns the status to exit with.
func LaunchInPIDNamespace(path string, stderr io.Writer) int {
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{pidInitArg0, path},
		Env:         envBelow(),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  passedSockets(),
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL},
	}
	return runBelow(cmd, "pid namespace", stderr)
}

// pidInit is the namespace's init: it mounts a /proc of the namespace in
// the app's root, starts the launcher that becomes the app, and reaps
// until the app ends, exiting with its status.
func pidInit(path string, stderr io.Writer) int {
	c, err := ReadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "appexec: %v\n", err)
		return ExitLaunchFailed
	}
	if root := c.Rootfs; root != "" && root != "/" {
		// Over the pod's /proc that the app's root has: the unit's mount
		// namespace is the app's own, so this goes nowhere else.
		target := filepath.Join(root, "proc")
		if err := unix.Mount("proc", target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			fmt.Fprintf(stderr, "appexec: app %s: /proc of its PID namespace: %v\n", c.Name, err)
			return ExitLaunchFailed
		}
	}
	cmd := &exec.Cmd{
		// Under the first launcher's name, so that a multi-call binary
		// is the launcher again.
		Path:       "/proc/self/exe",
		Args:       []string{os.Getenv(launcherNameEnv), path},
		Env:        append(envBelow(), pidInnerEnv+"=1"),
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: passedSockets(),
	}
	return runBelow(cmd, "app", stderr)
}

// launcherNameEnv carries the first launcher's argv[0] down to the init.
const launcherNameEnv = "_RKT_APPEXEC_ARG0"

// envBelow is the environment for the process below: this one's, but
// LISTEN_PID (the app's launcher sets its own), with the launcher's name.
func envBelow() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LISTEN_PID=") && !strings.HasPrefix(kv, launcherNameEnv+"=") {
			env = append(env, kv)
		}
	}
	name := os.Getenv(launcherNameEnv)
	if name == "" {
		name = os.Args[0] // the first launcher
	}
	return append(env, launcherNameEnv+"="+name)
}

// passedSockets are the sockets of socket activation (fd 3 and up, as
// LISTEN_FDS says), for the process below to have at the same numbers.
func passedSockets() []*os.File {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil {
		return nil
	}
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), "socket")
	}
	return files
}

// runBelow starts cmd, passes signals on to it, reaps whatever else ends
// (an init's orphans) and returns cmd's exit status, 128+N for a death by
// signal N.
func runBelow(cmd *exec.Cmd, what string, stderr io.Writer) int {
	// The parent-death signal fires when the forking thread ends: this
	// one lives as long as the process.
	runtime.LockOSThread()
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, forwarded...)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "appexec: start the %s: %v\n", what, err)
		return ExitLaunchFailed
	}
	done := make(chan int, 1)
	go func() {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				done <- ExitLaunchFailed
				return
			}
			if pid != cmd.Process.Pid {
				continue // an orphan the init inherited
			}
			switch {
			case ws.Signaled():
				done <- 128 + int(ws.Signal())
			default:
				done <- ws.ExitStatus()
			}
			return
		}
	}()
	for {
		select {
		case s := <-sigc:
			_ = cmd.Process.Signal(s)
		case code := <-done:
			return code
		}
	}
}
