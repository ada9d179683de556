package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/user"
	"golang.org/x/sys/unix"
)

// launcherName is the argv[0] under which the supervisor re-executes this
// binary to become the app: it reads an appexec.Config from fd 3 and execs.
const launcherName = "appexec"

// defaultPath is appc's PATH for apps whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run is the run entrypoint: stage0 exec'd us in the pod directory, in
// the pod's private mount namespace, with the pod lock in RKT_LOCK_FD. We
// stay as the pod's supervisor: the lock is held while we live, and we
// exit with the app's status.
func run(args []string) int {
	_, pos := splitFlags(args)
	if len(pos) != 1 {
		return fail("run: want one pod UUID, got %q", pos)
	}
	// The app must not inherit the lock: the pod is running exactly as
	// long as this supervisor lives.
	if fd, err := strconv.Atoi(os.Getenv("RKT_LOCK_FD")); err == nil {
		unix.CloseOnExec(fd)
	}
	os.Unsetenv("RKT_LOCK_FD")
	podDir, err := os.Getwd()
	if err != nil {
		return fail("run: %v", err)
	}
	pm, err := readPodManifest(podDir)
	if err != nil {
		return fail("run: %v", err)
	}
	if len(pm.Apps) != 1 {
		return fail("run: the fly stage1 runs exactly one app, the pod has %d", len(pm.Apps))
	}
	ra := &pm.Apps[0]
	name := ra.Name.String()
	rootfs := pod.AppRootfsPath(podDir, name)
	statusPath := filepath.Join(pod.Stage1RootfsPath(podDir), "rkt", "status", name)

	cfg, err := appConfig(podDir, pm, ra, rootfs)
	if err != nil {
		return fail("run: %v", err)
	}
	if err := setupMounts(podDir, pm, ra, rootfs); err != nil {
		return fail("run: app %s: %v", name, err)
	}

	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fail("run: %v", err)
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fail("run: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail("run: %v", err)
	}
	cmd := &exec.Cmd{
		Path:       self,
		Args:       []string{launcherName},
		Env:        []string{},
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{cfgR},
		// The app dies with its supervisor. The kernel drops this when
		// the app's uid or gid changes, so a non-root app outlives a
		// SIGKILLed supervisor (see the interface document).
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	// Signals sent to the pod (rkt run's pid) go to the app.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	if err := cmd.Start(); err != nil {
		return fail("run: start app %s: %v", name, err)
	}
	cfgR.Close()
	_, werr := cfgW.Write(cfgJSON)
	cfgW.Close()
	if werr != nil {
		_ = cmd.Process.Kill()
	}
	pid := cmd.Process.Pid
	if err := writeFileAtomic(filepath.Join(podDir, pod.PIDFile), []byte(strconv.Itoa(pid))); err != nil {
		fmt.Fprintf(os.Stderr, "stage1-fly: record pid: %v\n", err)
	}
	_ = os.Symlink("ready", filepath.Join(pod.Stage1RootfsPath(podDir), "rkt", "supervisor-status"))

	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigc:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		} else {
			code = ws.ExitStatus()
		}
	default:
		return fail("run: wait for app %s: %v", name, err)
	}
	if err := writeFileAtomic(statusPath, []byte(strconv.Itoa(code))); err != nil {
		fmt.Fprintf(os.Stderr, "stage1-fly: record exit status: %v\n", err)
	}
	return code
}

func readPodManifest(podDir string) (*schema.PodManifest, error) {
	b, err := os.ReadFile(filepath.Join(podDir, pod.ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("pod manifest: %w", err)
	}
	var pm schema.PodManifest
	if err := json.Unmarshal(b, &pm); err != nil {
		return nil, fmt.Errorf("pod manifest: %w", err)
	}
	return &pm, nil
}

// appConfig turns the (complete) runtime app into what appexec applies.
// Like rkt's fly, the app keeps the host's privileges: no capability
// bounding, no seccomp filter, no masked paths.
func appConfig(podDir string, pm *schema.PodManifest, ra *schema.RuntimeApp, rootfs string) (*appexec.Config, error) {
	app := ra.App
	if app == nil {
		return nil, fmt.Errorf("app %s has no app section in the pod manifest", ra.Name)
	}
	id, err := user.Resolve(rootfs, app.User, app.Group)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", ra.Name, err)
	}
	gids := append([]int{}, id.SupplementaryGIDs...)
	gids = append(gids, app.SupplementaryGIDs...)
	return &appexec.Config{
		Name:                ra.Name.String(),
		Rootfs:              rootfs,
		Exec:                app.Exec,
		Env:                 appEnv(ra, pm),
		WorkingDir:          app.WorkingDirectory,
		UID:                 id.UID,
		GID:                 id.GID,
		SupplementaryGIDs:   gids,
		ReadOnlyRootfs:      ra.ReadOnlyRootFS,
		DisableCapabilities: true,
		DisableSeccomp:      true,
		DisablePaths:        true,
	}, nil
}

// appEnv is the app's environment as appc wants it: the manifest's, plus
// PATH when unset and AC_APP_NAME.
func appEnv(ra *schema.RuntimeApp, pm *schema.PodManifest) []string {
	env := types.Environment{}
	for _, ev := range ra.App.Environment {
		env.Set(ev.Name, ev.Value)
	}
	if _, ok := env.Get("PATH"); !ok {
		env.Set("PATH", defaultPath)
	}
	env.Set("AC_APP_NAME", ra.Name.String())
	out := make([]string, 0, len(env))
	for _, ev := range env {
		out = append(out, ev.Name+"="+ev.Value)
	}
	_ = pm
	return out
}

// launch is the app's side of the fork: read the config stage1 sent on
// fd 3 and become the app.
func launch() int {
	f := os.NewFile(3, "appexec-config")
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fail("appexec: read config: %v", err)
	}
	var c appexec.Config
	if err := json.Unmarshal(data, &c); err != nil {
		return fail("appexec: config: %v", err)
	}
	err = appexec.Exec(&c)
	return fail("%v", err)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
