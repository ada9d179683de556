package stage1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/podmount"
	"golang.org/x/sys/unix"
)

// The app entrypoints of a mutable pod (app/add, app/start, app/stop,
// app/rm). stage0 runs them in the pod directory, inside the mount
// namespace it made for the pod (where stage1/rootfs is mounted), after
// it has mounted a new app's root in the pod's own namespace and updated
// the pod manifest. Each acts on the pod's systemd through the image's
// own systemctl, run inside the pod's mount namespace.

const (
	// mutableFile marks a mutable pod: the last app's exit does not end it.
	mutableFile = "/rkt/mutable"
	// podEnvFile records what every app gets from the pod (podEnv).
	podEnvFile = "/rkt/pod-env.json"
	// startedDir holds, per app, an empty file whose mtime is when the
	// app was last started (its pid file goes when it exits).
	startedDir = "/rkt/started"
)

// AppArgs is the app entrypoints' command line: `--app=NAME --uuid=UUID
// [--debug] [--disable-*]`.
type AppArgs struct {
	App, UUID                                 string
	Debug                                     bool
	DisableCaps, DisablePaths, DisableSeccomp bool
}

// ParseAppArgs parses an app entrypoint's arguments.
func ParseAppArgs(args []string) (*AppArgs, error) {
	a := &AppArgs{}
	for _, s := range args {
		name, val, _ := strings.Cut(s, "=")
		switch name {
		case "--app":
			a.App = val
		case "--uuid":
			a.UUID = val
		case "--debug":
			a.Debug = true
		case "--disable-capabilities-restriction":
			a.DisableCaps = true
		case "--disable-paths":
			a.DisablePaths = true
		case "--disable-seccomp":
			a.DisableSeccomp = true
		default:
			return nil, fmt.Errorf("unknown argument %q", s)
		}
	}
	if a.App == "" {
		return nil, errors.New("--app is required")
	}
	if _, err := types.NewACName(a.App); err != nil {
		return nil, fmt.Errorf("--app=%s: %w", a.App, err)
	}
	return a, nil
}

// AppEntrypoint runs app entrypoint op ("add", "start", "stop", "rm").
func AppEntrypoint(op string, args []string, stderr io.Writer) int {
	a, err := ParseAppArgs(args)
	if err == nil {
		switch op {
		case "add":
			err = appAdd(a)
		case "start":
			err = appStart(a)
		case "stop":
			err = appStop(a)
		case "rm":
			err = appRm(a)
		default:
			err = fmt.Errorf("unknown app entrypoint %q", op)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "app %s: %v\n", op, err)
		return ExitLaunchFailed
	}
	return 0
}

// systemctl runs the pod's own systemctl against the pod's systemd, in
// the mount namespace of the pod's PID 1 (where its /run and the image's
// libraries are).
func systemctl(podPID int, args ...string) error {
	userns, err := podmount.OwnUserNS(podPID)
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	var run func() error
	if userns != nil {
		// systemd takes orders from root only, which in a
		// --private-users pod is the root of its user namespace: a
		// process that a Go one cannot become (setns(2) refuses it
		// to a multithreaded process). The image's nsenter can; in
		// the pod's PID namespace too, or systemd drops a peer whose
		// PID it cannot see.
		nsenter := append([]string{"--target=" + strconv.Itoa(podPID), "--user", "--mount", "--pid", "--", "/usr/bin/systemctl"}, args...)
		cmd = imageCommand(context.Background(), pod.Stage1RootfsPath("."), "nsenter", nsenter)
		run = cmd.Run
	} else {
		cmd = exec.Command("/usr/bin/systemctl", args...)
		cmd.Dir = "/"
		run = func() error { return podmount.Run(podPID, cmd) }
	}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := run(); err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// handOver gives the root of a --private-users pod what app/add wrote for
// app in its stage1 root (launcher configs, FIFOs, unit): written after
// the pod booted, they are the host root's, whom the pod's user namespace
// does not map (nspawn chowned everything there at boot).
func handOver(s1, app string, ns *podmount.UserNS) error {
	for _, dir := range []string{appexecDir, iomuxDir, unitDir} {
		entries, err := os.ReadDir(filepath.Join(s1, dir))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() != app && !strings.HasPrefix(e.Name(), app+".") {
				continue
			}
			err := filepath.WalkDir(filepath.Join(s1, dir, e.Name()), func(path string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(path, ns.RootUID, ns.RootGID)
			})
			if err != nil {
				return fmt.Errorf("hand %s to the pod's root: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// unitInstalled says whether app has a unit in the pod.
func unitInstalled(app string) bool {
	_, err := os.Stat(filepath.Join(pod.Stage1RootfsPath("."), unitDir, serviceName(app)))
	return err == nil
}

func appAdd(a *AppArgs) error {
	podDir, err := os.Getwd()
	if err != nil {
		return err
	}
	s1 := pod.Stage1RootfsPath(podDir)
	if _, err := os.Stat(filepath.Join(s1, mutableFile)); err != nil {
		return errors.New("the pod is not mutable")
	}
	if unitInstalled(a.App) {
		return fmt.Errorf("the pod already has an app %s", a.App)
	}
	podPID, err := readPID(podDir)
	if err != nil {
		return err
	}
	pm, err := readPodManifest(podDir)
	if err != nil {
		return err
	}
	ra := pm.Apps.Get(types.ACName(a.App))
	if ra == nil {
		return fmt.Errorf("app %s is not in the pod manifest", a.App)
	}
	rc, err := pod.ReadRuntimeConfig(podDir)
	if err != nil {
		return err
	}
	rc.InsecureOptions.DisableCapabilities = rc.InsecureOptions.DisableCapabilities || a.DisableCaps
	rc.InsecureOptions.DisablePaths = rc.InsecureOptions.DisablePaths || a.DisablePaths
	rc.InsecureOptions.DisableSeccomp = rc.InsecureOptions.DisableSeccomp || a.DisableSeccomp
	rc.Interactive = false
	var env podEnv
	b, err := os.ReadFile(filepath.Join(s1, podEnvFile))
	if err != nil {
		return fmt.Errorf("pod environment: %w", err)
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("pod environment: %w", err)
	}

	ok := false
	defer func() {
		if !ok {
			removeAppFiles(podDir, podPID, a.App)
		}
	}()
	// Volumes nspawn bound at boot are in place; an empty volume new to
	// the pod gets a directory in the stage1 root (it goes with the pod).
	vols := map[types.ACName]*types.Volume{}
	for i := range pm.Volumes {
		vols[pm.Volumes[i].Name] = &pm.Volumes[i]
	}
	for _, m := range ra.Mounts {
		name := m.Volume
		if m.AppVolume != nil {
			name = m.AppVolume.Name
			vols[name] = m.AppVolume
		}
		v := vols[name]
		if v == nil || env.hasVolume(name.String()) {
			continue
		}
		if v.Kind == "host" && m.AppVolume != nil {
			// stage0 binds an app's own host volumes into the pod
			// before app/add, where it can see the host.
			if ok, err := podmount.Mounted(podPID, filepath.Join(volumesDir, name.String())); err != nil || !ok {
				return fmt.Errorf("volume %s: not bound in the pod", name)
			}
			continue
		}
		if v.Kind != "empty" {
			return fmt.Errorf("volume %s: a %s volume can only be given when the pod starts", name, v.Kind)
		}
		if err := makeEmptyVolume(filepath.Join(s1, volumesDir, name.String()), v); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
	}
	// The app's root is mounted only in the pod's namespace: reach it
	// through its PID 1's root.
	hostRoot := filepath.Join(fmt.Sprintf("/proc/%d/root", podPID), pod.AppRootfsInStage1(a.App))
	if mounted, err := podmount.Mounted(podPID, pod.AppRootfsInStage1(a.App)); err != nil || !mounted {
		if _, err2 := os.Stat(filepath.Join(podDir, pod.OverlayPrepared)); err2 == nil {
			return fmt.Errorf("the root of app %s is not mounted in the pod", a.App)
		}
	}
	if _, _, err := prepareApp(ra, appSetup{podDir: podDir, hostRoot: hostRoot, vols: vols, rc: rc, podEnv: env, tee: true}); err != nil {
		return err
	}
	if userns, err := podmount.OwnUserNS(podPID); err != nil {
		return err
	} else if userns != nil {
		if err := handOver(s1, a.App, userns); err != nil {
			return err
		}
	}
	// Cgroup v1 limits: the app's host cgroups were bound into the
	// stage1 root here, in stage0's namespace; the pod's systemd and the
	// launcher look in the pod's, so carry the mounts over.
	cfg, err := appexec.ReadConfig(filepath.Join(s1, appexecDir, a.App+".json"))
	if err != nil {
		return err
	}
	for _, d := range cfg.CgroupDirs {
		here := filepath.Join(s1, d)
		fd, err := podmount.Clone(here)
		if err != nil {
			return err
		}
		_ = unix.Unmount(here, unix.MNT_DETACH)
		if err := podmount.Attach(podPID, fd, d); err != nil {
			return err
		}
	}
	if err := systemctl(podPID, "daemon-reload"); err != nil {
		return err
	}
	ok = true
	return nil
}

// hasVolume says whether nspawn bound volume name at boot.
func (e podEnv) hasVolume(name string) bool {
	for _, v := range e.Volumes {
		if v == name {
			return true
		}
	}
	return false
}

// removeAppFiles removes what app/add wrote for app (best effort).
func removeAppFiles(podDir string, podPID int, app string) {
	s1 := pod.Stage1RootfsPath(podDir)
	_ = os.Remove(filepath.Join(s1, unitDir, serviceName(app)))
	if ms, err := filepath.Glob(filepath.Join(s1, appexecDir, app+".*json")); err == nil {
		for _, m := range ms {
			_ = os.Remove(m)
		}
	}
	for _, f := range []string{filepath.Join("/rkt/status", app), filepath.Join(pidsDir, app), filepath.Join(startedDir, app)} {
		_ = os.Remove(filepath.Join(s1, f))
	}
	if cfgs, err := filepath.Glob(filepath.Join(s1, "rkt/cgroup", app, "*")); err == nil {
		for _, c := range cfgs {
			rel := strings.TrimPrefix(c, s1)
			_ = podmount.Unmount(podPID, rel)
			_ = unix.Unmount(c, unix.MNT_DETACH)
		}
	}
	_ = os.RemoveAll(filepath.Join(s1, "rkt/cgroup", app))
	_ = os.RemoveAll(filepath.Join(s1, attachDir(app)))
}

func appStart(a *AppArgs) error {
	if !unitInstalled(a.App) {
		return fmt.Errorf("the pod has no app %s", a.App)
	}
	podPID, err := readPID(".")
	if err != nil {
		return err
	}
	s1 := pod.Stage1RootfsPath(".")
	if _, err := os.Stat(filepath.Join(s1, pidsDir, a.App)); err == nil {
		return nil // already running: nothing to start, nothing to reset
	}
	// A restarted app's last exit status no longer applies.
	_ = os.Remove(filepath.Join(s1, "rkt/status", a.App))
	if err := writeFile(filepath.Join(s1, startedDir, a.App), ""); err != nil {
		return err
	}
	// A failed earlier run would make systemd refuse nothing, but keeps
	// the unit "failed" in its eyes: start from a clean slate.
	_ = systemctl(podPID, "reset-failed", serviceName(a.App))
	return systemctl(podPID, "start", serviceName(a.App))
}

func appStop(a *AppArgs) error {
	if !unitInstalled(a.App) {
		return fmt.Errorf("the pod has no app %s", a.App)
	}
	podPID, err := readPID(".")
	if err != nil {
		return err
	}
	// SIGTERM to the app's processes, SIGKILL after its stop timeout;
	// the reaper records the status.
	return systemctl(podPID, "stop", serviceName(a.App))
}

func appRm(a *AppArgs) error {
	if !unitInstalled(a.App) {
		return fmt.Errorf("the pod has no app %s", a.App)
	}
	podDir, err := os.Getwd()
	if err != nil {
		return err
	}
	podPID, err := readPID(podDir)
	if err != nil {
		return err
	}
	if err := systemctl(podPID, "stop", serviceName(a.App)); err != nil {
		return err
	}
	_ = systemctl(podPID, "reset-failed", serviceName(a.App))
	removeAppFiles(podDir, podPID, a.App)
	return systemctl(podPID, "daemon-reload")
}
