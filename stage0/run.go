package stage0

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/lock"
	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// RunConfig is what stage0 tells stage1's run entrypoint beyond the pod
// directory: the arguments of rkt's stage1 interface.
type RunConfig struct {
	Debug       bool
	LocalConfig string
	// Stage1Rootfs is the stage1 tree's rootfs (the overlay's lower layer).
	Stage1Rootfs string
	// AppRootfs maps each app name to its tree's rootfs.
	AppRootfs map[string]string
	// AppTreeIDs maps each app name to its tree ID.
	AppTreeIDs map[string]string
	Stage1Tree string
}

// RunArgs builds the run entrypoint's arguments for a stage1 declaring
// interface version, never passing an argument newer than that version.
func RunArgs(version int, uuid string, debug bool, localConfig string, rc *pod.RuntimeConfig) []string {
	var args []string
	if debug || rc.Debug {
		args = append(args, "--debug")
	}
	nets := "default"
	if len(rc.Nets) > 0 {
		nets = strings.Join(rc.Nets, ",")
	}
	args = append(args, "--net="+nets)
	if rc.Interactive {
		args = append(args, "--interactive")
	}
	if rc.PrivateUsers != "" {
		args = append(args, "--private-users="+rc.PrivateUsers)
	}
	if rc.MDSToken != "" {
		args = append(args, "--mds-token="+rc.MDSToken)
	}
	args = append(args, "--local-config="+localConfig)
	if version >= 2 && rc.Hostname != "" {
		args = append(args, "--hostname="+rc.Hostname)
	}
	if version >= 4 {
		args = append(args, "--dns-conf-mode="+DNSConfMode(rc.DNS))
	}
	if version >= 3 {
		args = append(args, insecureArgs(rc.InsecureOptions)...)
	}
	if version >= 5 && rc.Mutable {
		args = append(args, "--mutable")
	}
	if version >= 6 && rc.IPC != "" {
		args = append(args, "--ipc="+rc.IPC)
	}
	return append(args, uuid)
}

// insecureArgs are the flags (interface version 3 and later) telling
// stage1 which of an app's restrictions --insecure-options lifted.
func insecureArgs(o pod.InsecureRunOptions) []string {
	var args []string
	if o.DisableCapabilities {
		args = append(args, "--disable-capabilities-restriction")
	}
	if o.DisablePaths {
		args = append(args, "--disable-paths")
	}
	if o.DisableSeccomp {
		args = append(args, "--disable-seccomp")
	}
	return args
}

// Exec mounts the pod's root filesystems in a private mount namespace and
// replaces this process with stage1's run entrypoint; it returns only on
// failure. p must be in run/ and locked; the lock passes to stage1 as
// RKT_LOCK_FD. The mounts exist only in the new namespace, so nothing is
// visible on the host and everything goes when the pod's last process
// exits.
func Exec(p *Pod, cfg RunConfig) error {
	s1m, err := readStage1Manifest(p.Dir)
	if err != nil {
		return err
	}
	entry, err := Entrypoint(s1m, "run")
	if err != nil {
		return err
	}
	version, err := InterfaceVersion(s1m)
	if err != nil {
		return err
	}
	rc, err := pod.ReadRuntimeConfig(p.Dir)
	if err != nil {
		return err
	}
	args := append([]string{entry}, RunArgs(version, p.UUID, cfg.Debug, cfg.LocalConfig, rc)...)
	if err := p.Lock.ClearCloexec(); err != nil {
		return fmt.Errorf("pass pod lock: %w", err)
	}
	env := append(os.Environ(), "RKT_LOCK_FD="+strconv.Itoa(p.Lock.Fd()))
	if err := os.Chdir(p.Dir); err != nil {
		return err
	}

	// The namespace belongs to this OS thread only until exec, which
	// turns the thread into the whole process; so everything from
	// unshare to exec must run on it.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("private mount namespace: %w", err)
	}
	mounted, err := MountPod(p.Dir, p.Manifest, cfg, true)
	if err != nil {
		unmountAll(mounted)
		return err
	}
	path := filepath.Join(pod.Stage1RootfsPath(p.Dir), entry)
	err = unix.Exec(path, args, env)
	unmountAll(mounted)
	return fmt.Errorf("exec stage1 %s: %w", path, err)
}

func readStage1Manifest(podDir string) (*schema.ImageManifest, error) {
	b, err := os.ReadFile(pod.Stage1ManifestPath(podDir))
	if err != nil {
		return nil, fmt.Errorf("stage1 manifest: %w", err)
	}
	var m schema.ImageManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("stage1 manifest: %w", err)
	}
	return &m, nil
}

// MountPod mounts, in the calling thread's mount namespace (which must
// already be private), the stage1 overlay and, when apps is set, every
// app's overlay. It returns what it mounted, innermost last.
func MountPod(podDir string, pm *schema.PodManifest, cfg RunConfig, apps bool) ([]string, error) {
	var mounted []string
	// Slave, not private: host mounts made later (a volume's source
	// being mounted, say) still propagate in, but nothing goes out.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return nil, fmt.Errorf("make / a slave mount: %w", err)
	}
	if _, err := os.Stat(filepath.Join(podDir, pod.OverlayPrepared)); err != nil {
		return nil, nil // --no-overlay: the trees were copied
	}
	s1root := pod.Stage1RootfsPath(podDir)
	ov := pod.OverlayDir(podDir, cfg.Stage1Tree)
	if err := mountOverlay(cfg.Stage1Rootfs, filepath.Join(ov, "upper"), filepath.Join(ov, "work"), s1root); err != nil {
		return nil, fmt.Errorf("mount stage1: %w", err)
	}
	mounted = append(mounted, s1root)
	if !apps {
		return mounted, nil
	}
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		lower, tree := cfg.AppRootfs[name], cfg.AppTreeIDs[name]
		if lower == "" || tree == "" {
			return mounted, fmt.Errorf("app %s: no tree to mount", name)
		}
		ov := pod.OverlayDir(podDir, tree)
		target := pod.AppRootfsPath(podDir, name)
		if err := mountOverlay(lower, filepath.Join(ov, "upper", name), filepath.Join(ov, "work", name), target); err != nil {
			return mounted, fmt.Errorf("mount app %s: %w", name, err)
		}
		mounted = append(mounted, target)
	}
	return mounted, nil
}

func mountOverlay(lower, upper, work, target string) error {
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("overlay on %s: %w (is overlayfs available? try --no-overlay)", target, err)
	}
	return nil
}

func unmountAll(mounted []string) {
	for i := len(mounted) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounted[i], unix.MNT_DETACH)
	}
}

// RunConfigFor reads what Exec needs to mount an existing pod from its
// directory and the store's tree root (DIR/cas/tree).
func RunConfigFor(podDir, treeRoot string) (RunConfig, *schema.PodManifest, error) {
	var cfg RunConfig
	b, err := os.ReadFile(filepath.Join(podDir, pod.ManifestFile))
	if err != nil {
		return cfg, nil, fmt.Errorf("pod manifest: %w", err)
	}
	var pm schema.PodManifest
	if err := json.Unmarshal(b, &pm); err != nil {
		return cfg, nil, fmt.Errorf("pod manifest: %w", err)
	}
	t, err := os.ReadFile(filepath.Join(podDir, pod.Stage1TreeIDFile))
	if err != nil {
		return cfg, nil, err
	}
	cfg.Stage1Tree = strings.TrimSpace(string(t))
	cfg.Stage1Rootfs = filepath.Join(treeRoot, cfg.Stage1Tree, "rootfs")
	cfg.AppRootfs = map[string]string{}
	cfg.AppTreeIDs = map[string]string{}
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		t, err := os.ReadFile(pod.AppTreeStoreIDPath(podDir, name))
		if err != nil {
			return cfg, nil, err
		}
		id := strings.TrimSpace(string(t))
		cfg.AppTreeIDs[name] = id
		cfg.AppRootfs[name] = filepath.Join(treeRoot, id, "rootfs")
	}
	return cfg, &pm, nil
}

// OpenPrepared takes a prepared pod for running: it locks it and moves it
// to run/.
func OpenPrepared(dataDir, uuid string) (*Pod, error) {
	pp, err := pod.Open(dataDir, uuid)
	if err != nil {
		return nil, err
	}
	if pp.State != pod.Prepared {
		return nil, fmt.Errorf("pod %s is %s, not prepared", pp.UUID, pp.Status())
	}
	l, err := lock.Open(pp.Dir)
	if err != nil {
		return nil, err
	}
	if err := l.TryExclusive(); err != nil {
		l.Close()
		return nil, fmt.Errorf("pod %s: %w", pp.UUID, err)
	}
	pm, err := pp.Manifest()
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &Pod{UUID: pp.UUID, DataDir: dataDir, Dir: pp.Dir, State: pod.Prepared, Lock: l, Manifest: pm}
	if err := p.move(pod.Run); err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}
