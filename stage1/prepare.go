package stage1

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/cgroup"
	"github.com/rktng/rkt/pkg/isolators"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/user"
	"golang.org/x/sys/unix"
)

// defaultPath is appc's PATH for apps whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultStopTimeout is how long an app has between SIGTERM and SIGKILL.
const defaultStopTimeout = 10

// podFiles is what the run entrypoint writes into the stage1 root before
// boot, computed from the pod manifest and the runtime config.
type podFiles struct {
	apps  []string
	units []*appUnit
	// nspawnBinds are nspawn --bind/--bind-ro arguments for the volumes.
	nspawnBinds []string
	// caps is the union of the apps' capability sets: the pod's bounding
	// set must hold them for the launcher to grant them (nspawn's own
	// default set lacks some, more so in a user namespace).
	caps []string
}

// appEnv is the app's environment as appc wants it: the manifest's, PATH
// when unset, AC_APP_NAME, and AC_METADATA_URL when the pod has a
// metadata service token.
func appEnv(ra *schema.RuntimeApp, mdsURL string) []string {
	env := types.Environment{}
	for _, ev := range ra.App.Environment {
		env.Set(ev.Name, ev.Value)
	}
	if _, ok := env.Get("PATH"); !ok {
		env.Set("PATH", defaultPath)
	}
	env.Set("AC_APP_NAME", ra.Name.String())
	if mdsURL != "" {
		env.Set("AC_METADATA_URL", mdsURL)
	}
	out := make([]string, 0, len(env))
	for _, ev := range env {
		out = append(out, ev.Name+"="+ev.Value)
	}
	return out
}

// appConfig is the launcher's config for app (rootfs as seen on the host
// at hostRootfs, inside the pod at /opt/stage2/APP/rootfs).
func appConfig(ra *schema.RuntimeApp, hostRootfs string, rc *pod.RuntimeConfig, mdsURL string) (*appexec.Config, error) {
	app := ra.App
	id, err := user.Resolve(hostRootfs, app.User, app.Group)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", ra.Name, err)
	}
	gids := append([]int{}, id.SupplementaryGIDs...)
	gids = append(gids, app.SupplementaryGIDs...)
	c := &appexec.Config{
		Name:                ra.Name.String(),
		Rootfs:              pod.AppRootfsInStage1(ra.Name.String()),
		Exec:                app.Exec,
		Env:                 appEnv(ra, mdsURL),
		WorkingDir:          app.WorkingDirectory,
		UID:                 id.UID,
		GID:                 id.GID,
		SupplementaryGIDs:   gids,
		ReadOnlyRootfs:      ra.ReadOnlyRootFS,
		ReadOnlyPaths:       appexec.DefaultReadOnlyPaths,
		MaskedPaths:         podMaskedPaths(),
		DisableCapabilities: rc.InsecureOptions.DisableCapabilities,
		DisableSeccomp:      rc.InsecureOptions.DisableSeccomp,
		DisablePaths:        rc.InsecureOptions.DisablePaths,
	}
	s, err := isolators.ForRuntimeApp(ra, id.UID)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", ra.Name, err)
	}
	s.Apply(c)
	if c.PrivatePIDNamespace, err = pod.AppPrivatePIDNamespace(ra.Annotations); err != nil {
		return nil, fmt.Errorf("app %s: %w", ra.Name, err)
	}
	return c, nil
}

// podMaskedPaths are appexec's masked paths but /proc/kmsg: nspawn has
// already put an unlinked FIFO over it, on which nothing can be mounted.
func podMaskedPaths() []string {
	var out []string
	for _, p := range appexec.DefaultMaskedPaths {
		if p != "/proc/kmsg" {
			out = append(out, p)
		}
	}
	return out
}

// mountPointReadOnly: the image's mount point of that name may ask for
// read-only too.
func mountPointReadOnly(app *types.App, m schema.Mount) bool {
	for _, mp := range app.MountPoints {
		if mp.Name == m.Volume && mp.ReadOnly {
			return true
		}
	}
	return false
}

// makeEmptyVolume makes (unless stage0 already did) an empty volume's
// directory with the volume's mode and owner.
func makeEmptyVolume(dir string, v *types.Volume) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	mode := os.FileMode(0o755)
	if v.Mode != nil {
		m, err := strconv.ParseUint(*v.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q: %w", *v.Mode, err)
		}
		mode = os.FileMode(m)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	uid, gid := 0, 0
	if v.UID != nil {
		uid = *v.UID
	}
	if v.GID != nil {
		gid = *v.GID
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// preparePod writes every per-pod file into the stage1 root: app configs,
// mount points in the app roots, hosts and resolv.conf, volumes, units.
// The apps' output goes to the run entrypoint too unless they have the
// console (--interactive on a terminal); with stdinFIFO the pod's one app
// reads the run entrypoint's stdin through a FIFO (--interactive without a
// terminal, where a pty would end the pod at the input's end of file).
func preparePod(podDir string, pm *schema.PodManifest, rc *pod.RuntimeConfig, hostname, resolvConf string, stdinFIFO bool, mdsURL string, activated map[string][]passedSocket) (*podFiles, error) {
	s1 := pod.Stage1RootfsPath(podDir)
	for _, d := range []string{appexecDir, iomuxDir, volumesDir, pidsDir, "/rkt/status", unitDir, "/etc/systemd", "/var/log/journal"} {
		if err := os.MkdirAll(filepath.Join(s1, d), 0o755); err != nil {
			return nil, err
		}
	}
	pf := &podFiles{}
	// Volumes are bound by nspawn below /rkt/volumes, from the host or,
	// for empty ones, from the pod directory (stage0's sharedVolumes, so
	// they go with the pod at gc).
	vols := map[types.ACName]*types.Volume{}
	for i := range pm.Volumes {
		vols[pm.Volumes[i].Name] = &pm.Volumes[i]
	}
	for i := range pm.Apps {
		for _, m := range pm.Apps[i].Mounts {
			if m.AppVolume != nil {
				vols[m.AppVolume.Name] = m.AppVolume
			}
		}
	}
	volNames := make([]string, 0, len(vols))
	for n := range vols {
		volNames = append(volNames, n.String())
	}
	sort.Strings(volNames)
	for _, n := range volNames {
		v := vols[types.ACName(n)]
		inPod := filepath.Join(volumesDir, n)
		var src string
		switch v.Kind {
		case "host":
			src = v.Source
		case "empty":
			src = filepath.Join(podDir, "sharedVolumes", n)
			if err := makeEmptyVolume(src, v); err != nil {
				return nil, fmt.Errorf("volume %s: %w", n, err)
			}
		default:
			return nil, fmt.Errorf("volume %s: unknown kind %q", n, v.Kind)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("volume %s: source %w", n, err)
		}
		if err := makeMountTarget(filepath.Join(s1, inPod), st.IsDir()); err != nil {
			return nil, fmt.Errorf("volume %s: %w", n, err)
		}
		opt := "--bind="
		if v.ReadOnly != nil && *v.ReadOnly {
			opt = "--bind-ro="
		}
		var bindOpts []string
		if v.Recursive != nil && !*v.Recursive {
			bindOpts = append(bindOpts, "norbind")
		}
		if rc.PrivateUsers != "" {
			// The volume's files as the pod's user namespace sees its
			// own: the host's root's are its root's (and what it
			// writes stays the host's root's), an empty volume's
			// uid and gid are the same inside.
			bindOpts = append(bindOpts, "idmap")
		}
		bind := opt + src + ":" + inPod
		if len(bindOpts) > 0 {
			bind += ":" + strings.Join(bindOpts, ",")
		}
		pf.nspawnBinds = append(pf.nspawnBinds, bind)
	}

	var names []string
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		name := ra.Name.String()
		names = append(names, name)
		u, caps, err := prepareApp(ra, appSetup{
			podDir: podDir, hostRoot: pod.AppRootfsPath(podDir, name), vols: vols, rc: rc,
			podEnv:    podEnv{Hostname: hostname, ResolvConf: resolvConf, MDSURL: mdsURL},
			relay:     !rc.Interactive,
			stdinFIFO: stdinFIFO,
			listen:    len(activated[name]) > 0,
		})
		if err != nil {
			return nil, err
		}
		pf.caps = append(pf.caps, caps...)
		pf.units = append(pf.units, u)
	}
	pf.apps = names
	if rc.Privileged {
		// The host's devices, for privileged apps to bind as their /dev.
		pf.nspawnBinds = append(pf.nspawnBinds, "--bind=/dev:"+hostDevDir)
	}
	if rc.Mutable || rc.Privileged {
		// Apps added later ask for capabilities nobody knows yet: the
		// pod's bounding set holds them all, and each app's launcher
		// narrows it to the app's own set, as for every app.
		pf.caps = append(pf.caps, "all")
	}

	for n, text := range staticUnits {
		if err := writeFile(filepath.Join(s1, "usr/lib/systemd/system", n), text); err != nil {
			return nil, err
		}
	}
	if err := writeFile(filepath.Join(s1, unitDir, "default.target"), podTargetText(names)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(s1, "etc/systemd/journald.conf"), journaldConf); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(s1, appsFile), strings.Join(names, "\n")+"\n"); err != nil {
		return nil, err
	}
	env, err := json.Marshal(podEnv{Hostname: hostname, ResolvConf: resolvConf, MDSURL: mdsURL, Volumes: volNames})
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(s1, podEnvFile), string(env)); err != nil {
		return nil, err
	}
	if rc.Mutable {
		// The reaper leaves a mutable pod running after its last app.
		if err := writeFile(filepath.Join(s1, mutableFile), ""); err != nil {
			return nil, err
		}
	}
	return pf, nil
}

// podEnv is what every app of a pod gets from the pod: recorded at boot
// (podEnvFile) so that apps added later get the same.
type podEnv struct {
	Hostname   string `json:"hostname"`
	ResolvConf string `json:"resolvConf,omitempty"`
	MDSURL     string `json:"mdsURL,omitempty"`
	// Volumes are the volumes nspawn bound below /rkt/volumes at boot.
	Volumes []string `json:"volumes,omitempty"`
}

// appSetup is what preparing one app needs from its pod.
type appSetup struct {
	podDir string
	// hostRoot is the app's root as this process reaches it.
	hostRoot string
	vols     map[types.ACName]*types.Volume
	rc       *pod.RuntimeConfig
	podEnv
	// relay sends the app's output to the run entrypoint too; tee only
	// puts the tee before the journal (Tee).
	relay, tee bool
	// stdinFIFO gives the app its input from the run entrypoint, through
	// the FIFO /rkt/iomux/APP.stdin.
	stdinFIFO bool
	// listen: the app takes the sockets rkt run was passed (see
	// activation.go).
	listen bool
}

// stdinFIFOPath is the app's input FIFO, relative to the stage1 root.
func stdinFIFOPath(app string) string { return filepath.Join(iomuxDir, app+".stdin") }

// prepareApp writes one app's files into the stage1 root: its launcher
// configs, mount points and /etc files in its root, output FIFOs and its
// unit. It returns the unit and the capabilities the app may be granted.
func prepareApp(ra *schema.RuntimeApp, s appSetup) (*appUnit, []string, error) {
	if ra.App == nil {
		return nil, nil, fmt.Errorf("app %s has no app section in the pod manifest", ra.Name)
	}
	podDir, rc, vols, hostRoot := s.podDir, s.rc, s.vols, s.hostRoot
	hostname, resolvConf, mdsURL, relay := s.Hostname, s.ResolvConf, s.MDSURL, s.relay
	s1 := pod.Stage1RootfsPath(podDir)
	name := ra.Name.String()
	var appCaps []string
	podRoot := pod.AppRootfsInStage1(name)
	cfg, err := appConfig(ra, hostRoot, rc, mdsURL)
	if err != nil {
		return nil, nil, err
	}
	u := &appUnit{Name: name, Interactive: rc.Interactive, Relay: relay, Tee: s.tee, StopTimeoutSec: defaultStopTimeout}
	streams, err := pod.AppStreams(ra.Annotations)
	if err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", name, err)
	}
	if streams.Attachable() {
		if rc.Interactive {
			return nil, nil, fmt.Errorf("app %s: attachable streams and --interactive exclude each other", name)
		}
		u.Streams = &streams
	}
	// Resource limits (pkg/isolators): a host cgroup the launcher
	// joins through a bind mount on cgroup v1, service properties
	// for the pod's systemd on v2.
	if cfg.CgroupDirs, u.Properties, err = isolators.PodAppLimits(podDir, filepath.Join(cgroup.PodName(filepath.Base(podDir)), "stage1"), name, ra.App, s1); err != nil {
		return nil, nil, err
	}

	// API filesystems for the app, from the pod's own.
	for _, d := range []string{"proc", "sys", "dev"} {
		if err := makeMountTarget(filepath.Join(hostRoot, d), true); err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", name, err)
		}
	}
	if pod.AppPrivileged(ra.Annotations) {
		if !rc.Privileged {
			return nil, nil, fmt.Errorf("app %s is privileged but the pod is not", name)
		}
		// Docker's --privileged: the host's devices, a writable /sys,
		// every capability of the pod's bounding set (all of them), no
		// seccomp filter, nothing of /proc masked.
		u.Binds = append(u.Binds, "/proc:"+podRoot+"/proc", hostDevDir+":"+podRoot+"/dev", "/sys:"+podRoot+"/sys")
		cfg.DisableCapabilities, cfg.DisableSeccomp, cfg.DisablePaths = true, true, true
	} else {
		u.Binds = append(u.Binds, "/proc:"+podRoot+"/proc", "/dev:"+podRoot+"/dev")
		u.ROBinds = append(u.ROBinds, "/sys:"+podRoot+"/sys")
	}
	if supportsNotify(podDir, ra) {
		// The pod's systemd's socket, where the app's own root has it.
		if err := makeMountTarget(filepath.Join(hostRoot, podNotifySocket), false); err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", name, err)
		}
		u.Binds = append(u.Binds, podNotifySocket+":"+podRoot+podNotifySocket)
		u.Notify = true
		cfg.Env = append(cfg.Env, "NOTIFY_SOCKET="+podNotifySocket)
	}

	for _, m := range ra.Mounts {
		name := m.Volume
		if m.AppVolume != nil {
			name = m.AppVolume.Name
		}
		v := vols[name]
		if v == nil {
			return nil, nil, fmt.Errorf("app %s: mount at %s has no volume %q", ra.Name, m.Path, name)
		}
		isDir := true
		if st, err := os.Stat(filepath.Join(s1, volumesDir, name.String())); err == nil {
			isDir = st.IsDir()
		}
		target, err := safeJoin(hostRoot, m.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("app %s: mount at %s: %w", ra.Name, m.Path, err)
		}
		if err := makeMountTarget(target, isDir); err != nil {
			return nil, nil, fmt.Errorf("app %s: mount at %s: %w", ra.Name, m.Path, err)
		}
		spec := filepath.Join(volumesDir, name.String()) + ":" + filepath.Join(podRoot, filepath.Clean("/"+m.Path))
		if v.Recursive != nil && !*v.Recursive {
			spec += ":norbind"
		}
		if mountPointReadOnly(ra.App, m) || (v.ReadOnly != nil && *v.ReadOnly) {
			u.ROBinds = append(u.ROBinds, spec)
		} else {
			u.Binds = append(u.Binds, spec)
		}
	}

	if err := writeEtc(hostRoot, hostname, resolvConf, rc); err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", name, err)
	}

	if !cfg.DisableCapabilities {
		set := cfg.Capabilities
		if set == nil {
			set = caps.Default()
		}
		appCaps = set
	}
	if err := appexec.WriteConfig(filepath.Join(s1, appexecDir, name+".json"), cfg); err != nil {
		return nil, nil, err
	}
	for _, eh := range ra.App.EventHandlers {
		hc := *cfg
		hc.Exec = eh.Exec
		file := filepath.Join(appexecDir, fmt.Sprintf("%s.%s.json", name, eh.Name))
		if err := appexec.WriteConfig(filepath.Join(s1, file), &hc); err != nil {
			return nil, nil, err
		}
		switch eh.Name {
		case "pre-start":
			u.PreStart = append(u.PreStart, file)
		case "post-stop":
			u.PostStop = append(u.PostStop, file)
		default:
			return nil, nil, fmt.Errorf("app %s: unknown event handler %q", name, eh.Name)
		}
	}
	if u.Relay {
		for _, s := range []string{"stdout", "stderr"} {
			p := filepath.Join(s1, iomuxDir, name+"."+s)
			_ = os.Remove(p)
			if err := unix.Mkfifo(p, 0o600); err != nil {
				return nil, nil, fmt.Errorf("app %s: output fifo: %w", name, err)
			}
		}
	}
	if s.listen {
		u.Listen = listenSocketPath(name)
	}
	if s.stdinFIFO && streams.Stdin == pod.StreamNull {
		u.StdinFIFO = stdinFIFOPath(name)
		p := filepath.Join(s1, u.StdinFIFO)
		_ = os.Remove(p)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return nil, nil, fmt.Errorf("app %s: input fifo: %w", name, err)
		}
	}
	if err := writeFile(filepath.Join(s1, unitDir, serviceName(name)), u.unitText()); err != nil {
		return nil, nil, err
	}
	return u, appCaps, nil
}

// safeJoin joins p below root, refusing ".." components that would leave
// it. Symlinks inside root are resolved by systemd later, inside the pod.
func safeJoin(root, p string) (string, error) {
	clean := filepath.Clean("/" + p)
	if clean == "/" {
		return "", errors.New("cannot mount over the app's root")
	}
	return filepath.Join(root, clean), nil
}

// makeMountTarget makes an empty directory or file to mount over.
func makeMountTarget(path string, dir bool) error {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink", path)
		}
		// systemd would fail the bind when setting up the app's
		// namespace, where nothing reports it and the pod waits forever.
		if st.IsDir() && !dir {
			return errors.New("the image has a directory there and the volume is a file")
		}
		if !st.IsDir() && dir {
			return errors.New("the image has a file there and the volume is a directory")
		}
		return nil
	}
	if dir {
		return os.MkdirAll(path, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// writeEtc writes the app's /etc/hostname, /etc/hosts and (unless DNS is
// left to the image) /etc/resolv.conf. The files are replaced, never
// written through: an image's symlink must not point the write outside
// its root.
func writeEtc(root, hostname, resolvConf string, rc *pod.RuntimeConfig) error {
	etc := filepath.Join(root, "etc")
	st, err := os.Lstat(etc)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(etc, 0o755); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("/etc of the image is not a directory")
	}
	if err := replaceFile(filepath.Join(etc, "hosts"), hostsFile(hostname, rc.DNS.HostsEntries)); err != nil {
		return err
	}
	if err := replaceFile(filepath.Join(etc, "hostname"), hostname+"\n"); err != nil {
		return err
	}
	if resolvConf != "" {
		if err := replaceFile(filepath.Join(etc, "resolv.conf"), resolvConf); err != nil {
			return err
		}
	}
	return nil
}

// hostsFile renders /etc/hosts: the host's when asked for, else loopback
// names, the pod's hostname and --hosts-entry lines.
func hostsFile(hostname string, entries map[string][]string) string {
	if _, ok := entries["host"]; ok && len(entries) == 1 {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			return string(b)
		}
	}
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n")
	b.WriteString("::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n")
	fmt.Fprintf(&b, "127.0.0.1\t%s\n", hostname)
	ips := make([]string, 0, len(entries))
	for ip := range entries {
		if ip != "host" {
			ips = append(ips, ip)
		}
	}
	sort.Strings(ips)
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, strings.Join(entries[ip], " "))
	}
	return b.String()
}

// resolvConfFor renders the pod's resolv.conf from --dns flags; "" means
// leave the image's (or the networks' when cniDNS is set).
func resolvConfFor(d pod.DNSConfig, hostNet bool, cniDNS string) string {
	servers := d.Servers
	if len(servers) == 1 && servers[0] == "none" {
		return ""
	}
	if (len(servers) == 1 && servers[0] == "host") || (len(servers) == 0 && hostNet && len(d.Search) == 0 && len(d.Options) == 0 && d.Domain == "") {
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			return string(b)
		}
		return ""
	}
	if len(servers) == 0 && len(d.Search) == 0 && len(d.Options) == 0 && d.Domain == "" {
		return cniDNS
	}
	var b strings.Builder
	b.WriteString("# written by rkt from --dns flags\n")
	if d.Domain != "" {
		fmt.Fprintf(&b, "domain %s\n", d.Domain)
	}
	if len(d.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.Search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.Options, " "))
	}
	return b.String()
}

func replaceFile(path, content string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFile writes a file the pod reads at boot (temp file + rename).
func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
