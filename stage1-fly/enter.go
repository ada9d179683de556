package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/cgroup"
	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// enter runs a command in a running app: `enter --pid=PID --appname=APP --
// CMD ARGS`. stage0 has already put us in the pod's mount namespace with
// the pod directory as working directory. The command gets the app's root
// (through /proc/PID/root), identity and environment: never more than the
// app has.
func enter(args []string) int {
	flags, cmd := splitFlags(args)
	pid, err := strconv.Atoi(flags["pid"])
	if err != nil || pid <= 0 {
		return fail("enter: want --pid=PID")
	}
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	podDir, err := os.Getwd()
	if err != nil {
		return fail("enter: %v", err)
	}
	pm, err := readPodManifest(podDir)
	if err != nil {
		return fail("enter: %v", err)
	}
	ra := &pm.Apps[0]
	if name := flags["appname"]; name != "" {
		if ra = pm.Apps.Get(types.ACName(name)); ra == nil {
			return fail("enter: pod has no app %q", name)
		}
	}
	root := filepath.Join("/proc", strconv.Itoa(pid), "root")
	cfg, err := appConfig(podDir, pm, ra, pod.AppRootfsPath(podDir, ra.Name.String()))
	if err != nil {
		return fail("enter: %v", err)
	}
	cfg.Rootfs = root
	cfg.Exec = cmd
	// The app's cgroups too, so that the command is under its limits.
	if cfg.CgroupDirs, err = cgroup.ProcessDirs(pid); err != nil {
		return fail("enter: %v", err)
	}
	cfg.ReadOnlyRootfs = false // already so, if the app's is
	err = appexec.Exec(cfg)
	return fail("enter: %v", err)
}

// stop is the stop entrypoint: `stop [--force] UUID`. The app gets
// SIGTERM (SIGKILL with --force); the supervisor records its status and
// exits with it.
func stop(args []string) int {
	flags, _ := splitFlags(args)
	b, err := os.ReadFile(pod.PIDFile)
	if err != nil {
		return fail("stop: pod has no pid: %v", err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil || pid <= 0 {
		return fail("stop: bad pid file %q", b)
	}
	sig := unix.SIGTERM
	if flags["force"] == "true" {
		sig = unix.SIGKILL
	}
	if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
		return fail("stop: signal pid %d: %v", pid, err)
	}
	return 0
}

// gc is the gc entrypoint: every mount of a fly pod lived in its private
// namespace and died with it, so there is nothing left to undo.
func gc(args []string) int { return 0 }
