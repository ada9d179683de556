package stage0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/isolators"
	"github.com/rktng/rkt/pkg/lock"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/podmount"
)

// Mutable pods: apps added to and removed from a running pod (`rkt app`).
// The pod's lock is held by its running stage1 for the pod's life, so app
// operations serialize on a lock of their own (AppLockFile). stage0 does
// what needs the host's view (the image's tree, the pod manifest,
// appsinfo, the app's overlay, built detached and moved into the pod's
// mount namespace, never the host's); stage1's app entrypoints do what
// needs the pod's (units, launcher configs, its systemd).

// AppLockFile, in the pod directory, serializes app operations on a pod.
const AppLockFile = "app.lck"

// ErrNotMutable: the pod was not started as a mutable pod (rkt app sandbox).
var ErrNotMutable = errors.New("pod is not mutable")

// ErrNoApp: the pod has no app of that name.
var ErrNoApp = errors.New("no app")

// mutablePod is a running mutable pod held for one app operation.
type mutablePod struct {
	p        *pod.Pod
	lock     *lock.FileLock
	manifest *schema.PodManifest
	stage1   *schema.ImageManifest
	// pid is the pod's PID 1; nsPid a process in the namespace where
	// stage1/rootfs is mounted (the run entrypoint).
	pid, nsPid int
	version    int
}

// openMutable checks that uuid names a running mutable pod and takes its
// app lock (waiting for another app operation to finish).
func openMutable(ctx context.Context, dataDir, uuid string) (*mutablePod, error) {
	p, err := pod.Open(dataDir, uuid)
	if err != nil {
		return nil, err
	}
	if st := p.Status(); st != pod.StatusRunning {
		return nil, fmt.Errorf("%w: pod %s is %s, not running", ErrBadPod, p.UUID, st)
	}
	rc, err := p.RuntimeConfig()
	if err != nil {
		return nil, err
	}
	if !rc.Mutable {
		return nil, fmt.Errorf("%w: pod %s: start it with `rkt app sandbox` to add or remove apps", ErrNotMutable, p.UUID)
	}
	l, err := lock.Open(filepath.Join(p.Dir, AppLockFile))
	if err != nil {
		return nil, err
	}
	if err := l.Exclusive(); err != nil {
		l.Close()
		return nil, err
	}
	mp := &mutablePod{p: p, lock: l}
	if err := mp.load(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return mp, nil
}

func (mp *mutablePod) load(ctx context.Context) error {
	p := mp.p
	// The pod runs a moment before its systemd does.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := p.WaitReady(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("pod %s is not ready: %w", p.UUID, err)
	}
	var perr error
	if mp.pid, perr = p.Pid(); perr != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, perr)
	}
	if mp.nsPid, perr = p.NamespacePid(); perr != nil {
		return fmt.Errorf("pod %s has no process: %w", p.UUID, perr)
	}
	if mp.manifest, perr = p.Manifest(); perr != nil {
		return perr
	}
	if mp.stage1, perr = readStage1Manifest(p.Dir); perr != nil {
		return perr
	}
	if mp.version, perr = InterfaceVersion(mp.stage1); perr != nil {
		return perr
	}
	return nil
}

func (mp *mutablePod) close() { mp.lock.Close() }

// app finds app in the pod manifest.
func (mp *mutablePod) app(name string) (*schema.RuntimeApp, error) {
	if ra := mp.manifest.Apps.Get(types.ACName(name)); ra != nil {
		return ra, nil
	}
	return nil, fmt.Errorf("pod %s has %w %q", mp.p.UUID, ErrNoApp, name)
}

// entrypoint runs stage1's app/OP for app with rkt's crossing-entrypoint
// interface, in the pod's namespace and directory. stage1's complaint,
// if any, becomes the error.
func (mp *mutablePod) entrypoint(op, app string, debug bool) error {
	name := "app/" + op
	entry, err := Entrypoint(mp.stage1, name)
	if err != nil {
		return err
	}
	args := []string{"--app=" + app, "--uuid=" + mp.p.UUID}
	if debug {
		args = append(args, "--debug")
	}
	if rc, err := mp.p.RuntimeConfig(); err == nil && mp.version >= 3 {
		args = append(args, insecureArgs(rc.InsecureOptions)...)
	}
	env := os.Environ()
	if enter, err := Entrypoint(mp.stage1, "enter"); err == nil {
		env = append(env, "RKT_STAGE1_ENTERCMD="+filepath.Join(pod.Stage1RootfsPath(mp.p.Dir), enter))
	}
	env = append(env, "RKT_STAGE1_ENTERPID="+strconv.Itoa(mp.pid), "RKT_STAGE1_ENTERAPP="+app)
	var stderr bytes.Buffer
	err = podmount.In(mp.nsPid, func() error {
		cmd := exec.Command(filepath.Join(pod.Stage1RootfsPath(mp.p.Dir), entry), args...)
		cmd.Args[0] = entry
		cmd.Dir = mp.p.Dir
		cmd.Env = env
		cmd.Stdout = os.Stderr
		cmd.Stderr = &stderr
		return cmd.Run()
	})
	if err != nil {
		if msg := lastLine(stderr.Bytes()); msg != "" {
			return fmt.Errorf("stage1 %s: %s", name, msg)
		}
		return fmt.Errorf("stage1 %s: %w", name, err)
	}
	return nil
}

// writeManifest replaces the pod manifest atomically.
func (mp *mutablePod) writeManifest(pm *schema.PodManifest) error {
	b, err := json.Marshal(pm)
	if err != nil {
		return fmt.Errorf("pod manifest: %w", err)
	}
	if err := writeAtomic(filepath.Join(mp.p.Dir, pod.ManifestFile), b, 0o640); err != nil {
		return fmt.Errorf("pod manifest: %w", err)
	}
	mp.manifest = pm
	return nil
}

// writeAtomic writes path by temp file, fsync and rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// AddAppConfig is `rkt app add`: one app for a running mutable pod.
type AddAppConfig struct {
	DataDir string
	UUID    string
	App     App
	// Image is the app's image, resolved and rendered.
	Image Image
	Debug bool
}

// AddApp adds an app to a running mutable pod, not started: its entry in
// the pod manifest, appsinfo, its root (an overlay mounted in the pod's
// namespace only) and, through stage1's app/add, its unit. It returns the
// app's name. On failure everything it did is undone.
func AddApp(ctx context.Context, cfg AddAppConfig) (string, error) {
	mp, err := openMutable(ctx, cfg.DataDir, cfg.UUID)
	if err != nil {
		return "", err
	}
	defer mp.close()
	if _, err := Entrypoint(mp.stage1, "app/add"); err != nil {
		return "", err
	}
	p := mp.p
	img := &cfg.Image
	name := types.ACName(cfg.App.Name)
	if name == "" {
		if name, err = appNameFor(img.Manifest); err != nil {
			return "", err
		}
	}
	if mp.manifest.Apps.Get(name) != nil {
		return "", fmt.Errorf("%w: pod %s already has an app named %q: give the new one --name", ErrBadPod, p.UUID, name)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, pod.OverlayPrepared)); err != nil {
		return "", fmt.Errorf("%w: pod %s does not use overlays, so apps cannot be added to it", ErrBadPod, p.UUID)
	}
	ra, err := runtimeApp(PrepareConfig{}, name, cfg.App, img)
	if err != nil {
		return "", err
	}
	if err := checkStreams(mp.stage1, false, ra); err != nil {
		return "", err
	}
	if pod.AppPrivileged(ra.Annotations) {
		if rc, err := p.RuntimeConfig(); err != nil || !rc.Privileged {
			return "", fmt.Errorf("%w: pod %s was not started privileged (rkt app sandbox --privileged), so it cannot take the privileged app %s", ErrBadPod, p.UUID, name)
		}
	}
	// The new manifest: a copy, so that a refusal leaves the old intact.
	var pm schema.PodManifest
	b, err := json.Marshal(mp.manifest)
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, &pm); err != nil {
		return "", err
	}
	pm.Apps = append(pm.Apps, *ra)
	if err := checkVolumes(&pm); err != nil {
		return "", err
	}
	if err := isolators.Validate(&pm); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadPod, err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	var undo []func()
	done := false
	defer func() {
		if done {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	app := name.String()
	info := pod.AppInfoDir(p.Dir, app)
	if err := os.MkdirAll(info, 0o755); err != nil {
		return "", err
	}
	undo = append(undo, func() { os.RemoveAll(info) })
	im, err := json.Marshal(img.Manifest)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(pod.AppImageManifestPath(p.Dir, app), im, 0o640); err != nil {
		return "", err
	}
	if err := writeAtomic(pod.AppTreeStoreIDPath(p.Dir, app), []byte(img.TreeID), 0o640); err != nil {
		return "", err
	}
	ov := pod.OverlayDir(p.Dir, img.TreeID)
	upper, work := filepath.Join(ov, "upper", app), filepath.Join(ov, "work", app)
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	undo = append(undo, func() {
		os.RemoveAll(upper)
		os.RemoveAll(work)
		// The tree's overlay directory goes too once no app uses it.
		os.Remove(filepath.Join(ov, "upper"))
		os.Remove(filepath.Join(ov, "work"))
		os.Remove(ov)
	})

	// The app's root: built detached here, where the tree and the pod
	// directory are, and attached in the pod's own mount namespace.
	userns, err := podmount.OwnUserNS(mp.pid)
	if err != nil {
		return "", err
	}
	var mfd int
	if userns != nil {
		// A --private-users pod: nspawn chowned the roots it booted
		// with; an added app's files are mapped instead.
		mfd, err = podmount.OverlayInUserNS(img.Rootfs, upper, work, userns)
	} else {
		mfd, err = podmount.Overlay(img.Rootfs, upper, work)
	}
	if err != nil {
		return "", fmt.Errorf("app %s: %w", app, err)
	}
	target := pod.AppRootfsInStage1(app)
	if err := podmount.Attach(mp.pid, mfd, target); err != nil {
		return "", fmt.Errorf("app %s: %w", app, err)
	}
	undo = append(undo, func() { _ = podmount.Unmount(mp.pid, target) })
	if err := attachHostVolumes(mp.pid, ra, userns, &undo); err != nil {
		return "", fmt.Errorf("app %s: %w", app, err)
	}

	old := mp.manifest
	if err := mp.writeManifest(&pm); err != nil {
		return "", err
	}
	undo = append(undo, func() { _ = mp.writeManifest(old) })
	if err := mp.entrypoint("add", app, cfg.Debug); err != nil {
		return "", err
	}
	done = true
	return app, nil
}

// attachHostVolumes binds the host volumes of the app's own
// (--mnt-volume) into the running pod, where nspawn would have bound them
// at boot: built detached here, in the host's view, and attached in the
// pod's namespace only; in a pod with a user namespace of its own
// (userns), idmapped with it. Each success adds its undo.
func attachHostVolumes(pid int, ra *schema.RuntimeApp, userns *podmount.UserNS, undo *[]func()) error {
	for _, m := range ra.Mounts {
		v := m.AppVolume
		if v == nil || v.Kind != "host" {
			continue
		}
		st, err := os.Stat(v.Source)
		if err != nil {
			return fmt.Errorf("volume %s: source %w", v.Name, err)
		}
		recursive := v.Recursive == nil || *v.Recursive
		readOnly := v.ReadOnly != nil && *v.ReadOnly
		fd, err := podmount.BindInUserNS(v.Source, recursive, readOnly, userns)
		if err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		target := pod.VolumeInStage1(v.Name.String())
		if st.IsDir() {
			err = podmount.Attach(pid, fd, target)
		} else {
			err = podmount.AttachFile(pid, fd, target)
		}
		if err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		*undo = append(*undo, func() { detachVolume(pid, target) })
	}
	return nil
}

// detachVolume unmounts a volume of an app's own inside the pod and
// removes its mount point, so that the name can be used again.
func detachVolume(pid int, target string) {
	_ = podmount.Unmount(pid, target)
	_ = podmount.In(pid, func() error { return os.Remove(target) })
}

// StartApp starts an added app of a running mutable pod.
func StartApp(ctx context.Context, dataDir, uuid, app string, debug bool) error {
	return appOp(ctx, dataDir, uuid, app, "start", debug)
}

// StopApp stops an app of a running mutable pod: SIGTERM, then SIGKILL
// after its stop timeout. It returns once the app has exited.
func StopApp(ctx context.Context, dataDir, uuid, app string, debug bool) error {
	return appOp(ctx, dataDir, uuid, app, "stop", debug)
}

func appOp(ctx context.Context, dataDir, uuid, app, op string, debug bool) error {
	mp, err := openMutable(ctx, dataDir, uuid)
	if err != nil {
		return err
	}
	defer mp.close()
	if _, err := mp.app(app); err != nil {
		return err
	}
	return mp.entrypoint(op, app, debug)
}

// RemoveApp removes an app from a running mutable pod, stopping it first
// if it runs: its unit (stage1's app/rm), its root's mount in the pod, its
// entry in the pod manifest, appsinfo and its overlay directories.
func RemoveApp(ctx context.Context, dataDir, uuid, app string, debug bool) error {
	mp, err := openMutable(ctx, dataDir, uuid)
	if err != nil {
		return err
	}
	defer mp.close()
	if _, err := mp.app(app); err != nil {
		return err
	}
	if err := mp.entrypoint("rm", app, debug); err != nil {
		return err
	}
	p := mp.p
	target := pod.AppRootfsInStage1(app)
	if err := podmount.Unmount(mp.pid, target); err != nil {
		return fmt.Errorf("app %s: %w", app, err)
	}
	// The empty mount point in the stage1 root goes too, so that an app
	// of the same name starts afresh.
	_ = podmount.In(mp.pid, func() error {
		os.Remove(target)
		os.Remove(filepath.Dir(target))
		return nil
	})
	// The app's own host volumes go with it.
	if ra := mp.manifest.Apps.Get(types.ACName(app)); ra != nil {
		for _, m := range ra.Mounts {
			if m.AppVolume != nil && m.AppVolume.Kind == "host" {
				detachVolume(mp.pid, pod.VolumeInStage1(m.AppVolume.Name.String()))
			}
		}
	}
	pm := *mp.manifest
	// Empty lists, not null: readers of an empty pod expect [] as a
	// sandbox's first manifest has it.
	pm.Apps = schema.AppList{}
	used := map[types.ACName]bool{}
	for _, ra := range mp.manifest.Apps {
		if ra.Name.String() == app {
			continue
		}
		pm.Apps = append(pm.Apps, ra)
		for _, m := range ra.Mounts {
			used[m.Volume] = true
		}
	}
	// Volumes only the removed app mounted (its implicit empty ones) go.
	pm.Volumes = []types.Volume{}
	for _, v := range mp.manifest.Volumes {
		if used[v.Name] {
			pm.Volumes = append(pm.Volumes, v)
		}
	}
	if err := mp.writeManifest(&pm); err != nil {
		return err
	}
	if b, err := os.ReadFile(pod.AppTreeStoreIDPath(p.Dir, app)); err == nil {
		ov := pod.OverlayDir(p.Dir, strings.TrimSpace(string(b)))
		os.RemoveAll(filepath.Join(ov, "upper", app))
		os.RemoveAll(filepath.Join(ov, "work", app))
		os.Remove(filepath.Join(ov, "upper"))
		os.Remove(filepath.Join(ov, "work"))
		os.Remove(ov)
	}
	return os.RemoveAll(pod.AppInfoDir(p.Dir, app))
}

// App states as `rkt app list` and `rkt app status` show them.
const (
	AppCreated = "created"
	AppRunning = "running"
	AppExited  = "exited"
)

// AppState is what stage0 can tell of one app of a pod from the host.
type AppState struct {
	Name    string
	ImageID string
	State   string
	// Created is when the app entered the pod; Started when it last
	// started, Finished when it last exited (zero when not known).
	Created, Started, Finished time.Time
	// ExitCode is set once the app has exited.
	ExitCode *int
}

// AppStates reports the state of every app of p, in manifest order.
func AppStates(p *pod.Pod) ([]AppState, error) {
	pm, err := p.Manifest()
	if err != nil {
		return nil, err
	}
	running := p.Status() == pod.StatusRunning
	upper := pod.Stage1UpperDir(p.Dir)
	mutable := false
	if rc, err := p.RuntimeConfig(); err == nil {
		mutable = rc.Mutable
	}
	var out []AppState
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		s := AppState{Name: name, ImageID: ra.Image.ID.String(), State: AppCreated}
		if fi, err := os.Stat(pod.AppImageManifestPath(p.Dir, name)); err == nil {
			s.Created = fi.ModTime()
		}
		started := filepath.Join(upper, "rkt", "started", name)
		if fi, err := os.Stat(started); err == nil {
			s.Started = fi.ModTime()
		} else if !mutable {
			// The apps of an ordinary pod start with it.
			s.Started = p.Started()
		}
		if code, err := p.AppExitCode(name); err == nil {
			s.State = AppExited
			s.ExitCode = &code
			s.Finished = p.AppExitTime(name)
		} else if _, err := os.Stat(filepath.Join(upper, "rkt", "pids", name)); err == nil && running {
			s.State = AppRunning
		} else if !s.Started.IsZero() && !running {
			s.State = AppExited
		}
		out = append(out, s)
	}
	return out, nil
}
