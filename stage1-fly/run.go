package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/isolators"
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
	flags, pos := splitFlags(args)
	if len(pos) != 1 {
		return fail("run: want one pod UUID, got %q", pos)
	}
	// Ignoring it would run the app as the host's root where a user
	// namespace was asked for.
	if _, ok := flags["private-users"]; ok {
		return fail("run: --private-users: the fly stage1 has no user namespace; use the default stage1")
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
	// Resource isolators: a cgroup made host-side, joined by the app
	// (through the launcher), removed by gc (pkg/cgroup's state file).
	if cfg.CgroupDirs, err = isolators.CreateCgroup(podDir, pos[0], name, ra.App); err != nil {
		return fail("run: %v", err)
	}
	if err := setupMounts(podDir, pm, ra, rootfs); err != nil {
		return fail("run: app %s: %v", name, err)
	}

	// Signals sent to the pod (rkt run's pid) go to the app.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	pid, rooted, err := startApp(cfg)
	if err != nil {
		return fail("run: start app %s: %v", name, err)
	}
	// The pod is ready, and its PID worth entering, once the app is in its
	// root: `rkt enter` joining a launcher still in stage1's view found
	// none of the app's files.
	ready := func() {
		if err := writeFileAtomic(filepath.Join(podDir, pod.PIDFile), []byte(strconv.Itoa(pid))); err != nil {
			fmt.Fprintf(os.Stderr, "stage1-fly: record pid: %v\n", err)
		}
		_ = os.Symlink("ready", filepath.Join(pod.Stage1RootfsPath(podDir), "rkt", "supervisor-status"))
		// Run from a service of Type=notify (this process is its main
		// one: rkt exec'd it): ready once the app runs. The app's own
		// sd_notify is not relayed here, as it is by the nspawn stage1.
		_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	}
	if rooted == nil {
		ready()
	} else {
		go func() {
			var b [1]byte
			if n, _ := rooted.Read(b[:]); n == 1 {
				ready()
			}
			rooted.Close()
		}()
	}

	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigc:
				_ = unix.Kill(pid, s.(unix.Signal))
			case <-done:
				return
			}
		}
	}()
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	close(done)
	if err != nil {
		return fail("run: wait for app %s: %v", name, err)
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
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
// Like rkt's fly, an app without security isolators keeps the host's
// privileges: no capability bounding, no seccomp filter, no masked paths.
func appConfig(podDir string, pm *schema.PodManifest, ra *schema.RuntimeApp, rootfs string) (*appexec.Config, error) {
	app := ra.App
	if app == nil {
		return nil, fmt.Errorf("app %s has no app section in the pod manifest", ra.Name)
	}
	if private, err := pod.AppPrivatePIDNamespace(ra.Annotations); err != nil || private {
		if err == nil {
			err = errors.New("a PID namespace of its own needs the default stage1 (the fly runs apps in the host's)")
		}
		return nil, fmt.Errorf("app %s: %w", ra.Name, err)
	}
	rc, err := pod.ReadRuntimeConfig(podDir)
	if err != nil {
		return nil, err
	}
	id, err := user.Resolve(rootfs, app.User, app.Group)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", ra.Name, err)
	}
	gids := append([]int{}, id.SupplementaryGIDs...)
	gids = append(gids, app.SupplementaryGIDs...)
	c := &appexec.Config{
		Name:                ra.Name.String(),
		Rootfs:              rootfs,
		Exec:                app.Exec,
		Env:                 appEnv(ra, rc),
		WorkingDir:          app.WorkingDirectory,
		UID:                 id.UID,
		GID:                 id.GID,
		SupplementaryGIDs:   gids,
		ReadOnlyRootfs:      ra.ReadOnlyRootFS,
		DisableCapabilities: true,
		DisableSeccomp:      true,
		DisablePaths:        true,
	}
	// An app that asks for capability, seccomp, no_new_privs or OOM
	// isolators, or has a seccomp profile, gets them (with the runtime's
	// defaults for the rest, as under the default stage1), unless
	// --insecure-options lifted them.
	if _, profile := ra.Annotations.Get(isolators.AnnotationSeccompProfile); profile || securityIsolators(app) {
		s, err := isolators.ForRuntimeApp(ra, id.UID)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", ra.Name, err)
		}
		s.Apply(c)
		c.DisableCapabilities = rc.InsecureOptions.DisableCapabilities
		c.DisableSeccomp = rc.InsecureOptions.DisableSeccomp
	}
	return c, nil
}

// securityIsolators reports whether app has isolators the fly applies:
// the os/linux ones. Resource limits (cgroups) are not the fly's.
func securityIsolators(app *types.App) bool {
	for _, iso := range app.Isolators {
		if strings.HasPrefix(iso.Name.String(), "os/linux/") {
			return true
		}
	}
	return false
}

// appEnv is the app's environment as appc wants it: the manifest's, plus
// PATH when unset and AC_APP_NAME.
func appEnv(ra *schema.RuntimeApp, rc *pod.RuntimeConfig) []string {
	env := types.Environment{}
	for _, ev := range ra.App.Environment {
		env.Set(ev.Name, ev.Value)
	}
	if _, ok := env.Get("PATH"); !ok {
		env.Set("PATH", defaultPath)
	}
	env.Set("AC_APP_NAME", ra.Name.String())
	// A pod registered with the metadata service reaches it on the host's
	// loopback: the fly shares the host's network.
	if rc != nil && rc.MDSToken != "" && rc.MDSPort != 0 {
		// Formatted here as mds.URL does: importing pkg/mds (net/http)
		// would add a third to this binary and to every pod's start.
		env.Set("AC_METADATA_URL", "http://127.0.0.1:"+strconv.Itoa(rc.MDSPort)+"/"+rc.MDSToken)
	}
	out := make([]string, 0, len(env))
	for _, ev := range env {
		out = append(out, ev.Name+"="+ev.Value)
	}
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
	// Fd 4 tells the run entrypoint when this process is in the app's
	// root; closed before the exec, so the app never holds it.
	signal := func() error {
		f := os.NewFile(4, "appexec-rooted")
		_, _ = f.Write([]byte{1})
		return f.Close()
	}
	err = appexec.ExecRooted(&c, signal)
	return fail("%v", err)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// startApp starts the app as a child in the state appexec describes. For
// what the fly applies (chroot, groups, gid, uid, working directory,
// environment, parent-death signal) the kernel sequence Go's fork/exec
// runs in the child is exactly appexec's, in the same order, so the app
// is started directly, saving a second Go runtime start per pod (about a
// fifth of a fly pod's start). Configurations needing more (capability
// sets, seccomp, masked paths, oom_score_adj) go through the appexec
// launcher: this binary re-executed, reading the config from fd 3.
//
// rooted, for a launcher, yields one byte once the launcher is in the
// app's root (EOF if it failed first); it is nil when the app was started
// directly, since ForkExec returns after the exec.
func startApp(c *appexec.Config) (pid int, rooted *os.File, err error) {
	if err := c.Validate(); err != nil {
		return 0, nil, err
	}
	if !c.DisableCapabilities || !c.DisableSeccomp || len(c.CgroupDirs) > 0 || (!c.DisablePaths && (len(c.ReadOnlyPaths) > 0 || len(c.MaskedPaths) > 0)) || c.OOMScoreAdj != nil {
		return startLauncher(c)
	}
	if c.ReadOnlyRootfs {
		if err := readOnlyRoot(c.Rootfs); err != nil {
			return 0, nil, err
		}
	}
	path, err := lookPathInRoot(c.Rootfs, c.Exec[0], c.Env)
	if err != nil {
		return 0, nil, fmt.Errorf("app %s: %w", c.Name, err)
	}
	groups := make([]uint32, 0, len(c.SupplementaryGIDs))
	for _, g := range c.SupplementaryGIDs {
		groups = append(groups, uint32(g))
	}
	wd := c.WorkingDir
	if wd == "" {
		wd = "/"
	}
	pid, err = syscall.ForkExec(path, c.Exec, &syscall.ProcAttr{
		Dir:   wd,
		Env:   c.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Chroot:     c.Rootfs,
			Credential: &syscall.Credential{Uid: uint32(c.UID), Gid: uint32(c.GID), Groups: groups},
			Pdeathsig:  syscall.SIGKILL,
		},
	})
	if err != nil {
		return 0, nil, fmt.Errorf("app %s: exec %s: %w", c.Name, c.Exec[0], err)
	}
	return pid, nil, nil
}

// startLauncher re-executes this binary as the appexec launcher.
func startLauncher(c *appexec.Config) (int, *os.File, error) {
	cfgJSON, err := json.Marshal(c)
	if err != nil {
		return 0, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	rootedR, rootedW, err := os.Pipe()
	if err != nil {
		w.Close()
		return 0, nil, err
	}
	defer rootedW.Close()
	self, err := os.Executable()
	if err != nil {
		w.Close()
		rootedR.Close()
		return 0, nil, err
	}
	pid, err := syscall.ForkExec(self, []string{launcherName}, &syscall.ProcAttr{
		Env:   []string{},
		Files: []uintptr{0, 1, 2, r.Fd(), rootedW.Fd()},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		w.Close()
		rootedR.Close()
		return 0, nil, err
	}
	_, err = w.Write(cfgJSON)
	w.Close()
	if err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		rootedR.Close()
		return 0, nil, err
	}
	return pid, rootedR, nil
}

// readOnlyRoot makes the app's root a read-only bind of itself; the
// mounts below it (volumes, /proc, /dev, /sys) keep their own flags.
func readOnlyRoot(root string) error {
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s for a read-only rootfs: %w", root, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", root, err)
	}
	return nil
}

// lookPathInRoot finds the app's executable as the app will: an absolute
// path as is, a bare name through the app's PATH, all inside root. The
// returned path is the one to exec after the chroot.
func lookPathInRoot(root, name string, env []string) (string, error) {
	check := func(p string) error {
		host, err := resolveInRoot(root, p)
		if err != nil {
			return err
		}
		st, err := os.Stat(host)
		if err != nil {
			return err
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", p)
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if !strings.HasPrefix(name, "/") {
			name = "/" + name
		}
		if err := check(name); err != nil {
			return "", fmt.Errorf("%w: %s: %w", appexec.ErrExecNotFound, name, err)
		}
		return name, nil
	}
	pathVar := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := filepath.Join("/", dir, name)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s in PATH %s", appexec.ErrExecNotFound, name, pathVar)
}
