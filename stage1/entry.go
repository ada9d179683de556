package stage1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/cgroup"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage1/network"
	"golang.org/x/sys/unix"
)

// sigRTMin is glibc's SIGRTMIN, the base of systemd's control signals.
const sigRTMin = 34

// Stop is the stop entrypoint (`stop [--force] UUID`, in the pod
// directory): gracefully, the pod's systemd stops every app (SIGTERM,
// SIGKILL after the app's stop timeout), records their statuses and
// exits; with --force the pod's PID 1 is killed, and every process of the
// pod with it.
func Stop(args []string, stderr io.Writer) int {
	force := false
	var uuid string
	for _, a := range args {
		switch {
		case a == "--force":
			force = true
		case strings.HasPrefix(a, "--"):
		default:
			uuid = a
		}
	}
	pid, err := readPID(".")
	// A pod runs (holds its lock, has joined its networks) a moment
	// before its systemd starts and the pid file is written.
	for deadline := time.Now().Add(10 * time.Second); errors.Is(err, os.ErrNotExist) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		pid, err = readPID(".")
	}
	if err != nil {
		fmt.Fprintf(stderr, "stop %s: %v\n", uuid, err)
		return 1
	}
	sig := syscall.Signal(sigRTMin + 4) // poweroff.target, our exit path
	if force {
		sig = unix.SIGKILL
	}
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		fmt.Fprintf(stderr, "stop %s: %v\n", uuid, err)
		return 1
	}
	return 0
}

func readPID(podDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(podDir, pod.PIDFile))
	if err != nil {
		return 0, fmt.Errorf("pod pid: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// GC is the gc entrypoint (`gc [--debug] [--local-config=DIR] UUID`, in
// the exited pod's directory): the pod's mounts died with its mount
// namespace; what remains is its networks and its cgroups.
func GC(ctx context.Context, args []string, stderr io.Writer) int {
	debug := false
	localConfig := ""
	for _, a := range args {
		switch {
		case a == "--debug":
			debug = true
		case strings.HasPrefix(a, "--local-config="):
			localConfig = strings.TrimPrefix(a, "--local-config=")
		}
	}
	podDir, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "gc: %v\n", err)
		return 1
	}
	failed := false
	tc := network.TeardownForStage1(podDir, localConfig, debug)
	tc.Stderr = stderr
	if err := network.Teardown(ctx, tc); err != nil {
		fmt.Fprintf(stderr, "gc: %v\n", err)
		failed = true
	}
	if err := removePodCgroups(podDir); err != nil {
		fmt.Fprintf(stderr, "gc: %v\n", err)
		failed = true
	}
	if err := cgroup.RemovePod(podDir); err != nil {
		fmt.Fprintf(stderr, "gc: %v\n", err)
		failed = true
	}
	if failed {
		return 1
	}
	return 0
}

// Enter is the enter entrypoint (`enter --pid=N --appname=A -- CMD...`,
// in the pod directory and its mount namespace): the command joins the
// app's namespaces, root and cgroups with exactly the app's identity,
// capabilities, no_new_privs and seccomp filter (pkg/appexec.Enter); the
// image's nsenter takes it into the user namespace of a --private-users pod.
func Enter(args []string, stderr io.Writer) int {
	var podPID int
	var app string
	var cmd []string
	for i, a := range args {
		if a == "--" {
			cmd = args[i+1:]
			break
		}
		switch {
		case strings.HasPrefix(a, "--pid="):
			podPID, _ = strconv.Atoi(strings.TrimPrefix(a, "--pid="))
		case strings.HasPrefix(a, "--appname="):
			app = strings.TrimPrefix(a, "--appname=")
		}
	}
	if app == "" {
		fmt.Fprintln(stderr, "enter: --appname is required")
		return ExitLaunchFailed
	}
	if podPID == 0 {
		var err error
		if podPID, err = readPID("."); err != nil {
			fmt.Fprintf(stderr, "enter: %v\n", err)
			return ExitLaunchFailed
		}
	}
	s1 := pod.Stage1RootfsPath(".")
	cfg, err := appexec.ReadConfig(filepath.Join(s1, appexecDir, app+".json"))
	if err != nil {
		fmt.Fprintf(stderr, "enter: app %s: %v\n", app, err)
		return ExitLaunchFailed
	}
	pid, err := appHostPID(s1, podPID, app)
	if err != nil {
		fmt.Fprintf(stderr, "enter: %v\n", err)
		return ExitLaunchFailed
	}
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	cfg.Exec = cmd
	code, err := appexec.Enter(appexec.EnterConfig{PID: pid, App: *cfg,
		Nsenter: imageCommand(context.Background(), s1, "nsenter", nil).Args})
	if err != nil {
		fmt.Fprintf(stderr, "enter: %v\n", err)
		return ExitLaunchFailed
	}
	return code
}

// appHostPID maps the PID the app's launcher recorded (in the pod's PID
// namespace) to the host's, among the children of the pod's PID 1.
func appHostPID(s1 string, podPID int, app string) (int, error) {
	b, err := os.ReadFile(filepath.Join(s1, pidsDir, app))
	if err != nil {
		return 0, fmt.Errorf("app %s is not running", app)
	}
	inner := strings.TrimSpace(string(b))
	deadline := time.Now().Add(time.Second)
	for {
		if pid := pod.DescendantByNSPid(podPID, inner); pid != 0 {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("app %s (pid %s in the pod) not found", app, inner)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
