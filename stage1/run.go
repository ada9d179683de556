package stage1

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/mds"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage1/network"
	"golang.org/x/sys/unix"
)

// RunConfig is the run entrypoint's command line (rkt's stage1 interface,
// version 6).
type RunConfig struct {
	Debug        bool
	Net          []string
	Interactive  bool
	PrivateUsers string
	MDSToken     string
	LocalConfig  string
	Hostname     string
	DNSConfMode  string
	Mutable      bool
	IPC          string
	UUID         string
	// The --disable-* flags, which also reach the runtime config.
	DisableCaps, DisablePaths, DisableSeccomp bool
}

// ParseRunArgs parses the run entrypoint's arguments.
func ParseRunArgs(args []string) (*RunConfig, error) {
	c := &RunConfig{}
	for _, a := range args {
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case !strings.HasPrefix(a, "--"):
			if c.UUID != "" {
				return nil, fmt.Errorf("unexpected argument %q", a)
			}
			c.UUID = a
		case name == "--debug":
			c.Debug = true
		case name == "--net" && hasVal:
			c.Net = strings.Split(val, ",")
		case name == "--interactive":
			c.Interactive = true
		case name == "--private-users":
			c.PrivateUsers = val
		case name == "--mds-token":
			c.MDSToken = val
		case name == "--local-config":
			c.LocalConfig = val
		case name == "--hostname":
			c.Hostname = val
		case name == "--dns-conf-mode":
			c.DNSConfMode = val
		case name == "--disable-capabilities-restriction":
			c.DisableCaps = true
		case name == "--disable-paths":
			c.DisablePaths = true
		case name == "--disable-seccomp":
			c.DisableSeccomp = true
		case name == "--mutable":
			c.Mutable = true
		case name == "--ipc":
			c.IPC = val
		default:
			return nil, fmt.Errorf("unknown flag %q", a)
		}
	}
	if c.UUID == "" {
		return nil, errors.New("missing pod UUID")
	}
	return c, nil
}

// ExitLaunchFailed is the run entrypoint's status when the pod could not
// start, rkt's code for its own failures.
const ExitLaunchFailed = 254

// Run is the run entrypoint. stage0 exec'd it in the pod directory, in
// the pod's private mount namespace, with the stage1 and app roots
// mounted and the pod lock in RKT_LOCK_FD. It stays the parent of
// systemd-nspawn for the pod's life (holding the lock), relays the apps'
// output and returns the first app's exit status.
func Run(ctx context.Context, c *RunConfig, stdout, stderr io.Writer) int {
	start := time.Now()
	// trace prints, with --debug, how long each step of the boot took.
	trace := func(what string) {
		if c.Debug {
			fmt.Fprintf(stderr, "stage1: %s after %v\n", what, time.Since(start).Round(100*time.Microsecond))
		}
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "stage1: "+format+"\n", a...)
		return ExitLaunchFailed
	}
	podDir, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	pm, err := readPodManifest(podDir)
	if err != nil {
		return fail("%v", err)
	}
	rc, err := pod.ReadRuntimeConfig(podDir)
	if err != nil {
		rc = &pod.RuntimeConfig{}
	}
	// The command line wins over the runtime config where both speak.
	rc.InsecureOptions.DisableCapabilities = rc.InsecureOptions.DisableCapabilities || c.DisableCaps
	rc.InsecureOptions.DisablePaths = rc.InsecureOptions.DisablePaths || c.DisablePaths
	rc.InsecureOptions.DisableSeccomp = rc.InsecureOptions.DisableSeccomp || c.DisableSeccomp
	rc.Interactive = rc.Interactive || c.Interactive
	if c.PrivateUsers != "" {
		rc.PrivateUsers = c.PrivateUsers
	}
	switch c.IPC {
	case "":
	case "auto", "private", "parent":
		rc.IPC = c.IPC
	default:
		return fail("--ipc=%s: want auto, private or parent", c.IPC)
	}
	rc.Mutable = rc.Mutable || c.Mutable
	if len(pm.Apps) == 0 && !rc.Mutable {
		return fail("the pod has no apps")
	}
	if rc.Interactive && len(pm.Apps) != 1 {
		return fail("--interactive needs exactly one app, the pod has %d", len(pm.Apps))
	}
	socks, err := passedSockets()
	if err != nil {
		return fail("socket activation: %v", err)
	}
	assigned, err := assignSockets(pm, socks)
	if err != nil {
		return fail("socket activation: %v", err)
	}
	stdinFIFO := false
	if rc.Interactive && !isTerminal(os.Stdin) {
		// No terminal to give the app: its input comes through a FIFO
		// and its output through the relay, byte for byte, as without
		// --interactive.
		rc.Interactive, stdinFIFO = false, true
	}
	hostname := c.Hostname
	if hostname == "" {
		hostname = rc.Hostname
	}
	if hostname == "" {
		hostname = "rkt-" + c.UUID
	}
	nets := c.Net
	if len(nets) == 0 {
		nets = rc.Nets
	}
	if len(nets) == 0 {
		nets = []string{"default"}
	}

	// The pod's cgroup: made before anything else that could fail after
	// it, so that gc finds it.
	cg, err := createPodCgroup(podDir, c.UUID)
	if err != nil {
		return fail("%v", err)
	}
	// A pod that fails to start leaves nothing on the host: what was made
	// for it is undone at once rather than at gc.
	started := false
	var undo []func()
	defer func() {
		if started {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	undo = append(undo, func() { _ = removePodCgroups(podDir) })
	// Moving a process between cgroups waits for an RCU grace period:
	// let that pass while the pod is being prepared.
	joined := make(chan error, 1)
	go func() { joined <- cg.join() }()

	hostNet := nets[0] == "host"
	var netArgs []string
	var cniDNS string
	// The host as the pod reaches it, for the metadata service.
	hostIP := "127.0.0.1"
	var podIPs []string
	switch {
	case hostNet:
	case nets[0] == "none" && len(nets) == 1:
		netArgs = []string{"--private-network"}
	default:
		ncfg, err := network.ForStage1(podDir, c.UUID, c.LocalConfig, nets, pm, c.Debug)
		if err != nil {
			return fail("network: %v", err)
		}
		ncfg.Stderr = stderr
		np, err := network.Setup(ctx, ncfg)
		if err != nil {
			return fail("network: %v", err)
		}
		undo = append(undo, func() {
			tc := network.TeardownForStage1(podDir, c.LocalConfig, c.Debug)
			tc.Stderr = stderr
			if err := network.Teardown(context.Background(), tc); err != nil {
				fmt.Fprintf(stderr, "stage1: network: %v\n", err)
			}
		})
		if np.NetnsPath != "" {
			netArgs = []string{"--network-namespace-path=" + np.NetnsPath}
		}
		hostNet = np.HostNetwork()
		for _, n := range np.Nets {
			if n.IP != "" {
				podIPs = append(podIPs, n.IP)
			}
		}
		cniDNS = np.ResolvConf()
		if !hostNet && len(np.Nets) > 0 && np.Nets[0].Gateway != "" {
			hostIP = np.Nets[0].Gateway
		}
	}

	resolv := resolvConfFor(rc.DNS, hostNet, cniDNS)
	mdsURL := ""
	if c.MDSToken != "" {
		port := rc.MDSPort
		if port == 0 {
			port = mdsDefaultPort
		}
		mdsURL = fmt.Sprintf("http://%s/%s", net.JoinHostPort(hostIP, strconv.Itoa(port)), c.MDSToken)
		if len(podIPs) > 0 && rc.MDSSocket != "" {
			bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := mds.NewClient(rc.MDSSocket).BindAddresses(bctx, c.UUID, podIPs)
			cancel()
			if err != nil {
				return fail("metadata service: bind pod to %s: %v", strings.Join(podIPs, ", "), err)
			}
		}
	}
	pf, err := preparePod(podDir, pm, rc, hostname, resolv, stdinFIFO, mdsURL, assigned)
	if err != nil {
		return fail("%v", err)
	}
	sockSrv, err := serveSockets(pod.Stage1RootfsPath(podDir), assigned)
	if err != nil {
		return fail("socket activation: %v", err)
	}
	defer sockSrv.close()

	trace("pod prepared")
	relay, err := openRelay(podDir, pf, stdout, stderr)
	if err != nil {
		return fail("%v", err)
	}

	notify, err := startNotifyRelay(podDir)
	if err != nil {
		relay.abort()
		return fail("%v", err)
	}
	defer notify.close()
	args := nspawnArgs(podDir, c, rc, hostname, netArgs, pf)
	if notify != nil {
		// Before "--": what follows is the pod's systemd's.
		for i, a := range args {
			if a == "--" {
				args = append(args[:i:i], append([]string{"--notify-ready=yes"}, args[i:]...)...)
				break
			}
		}
	}
	cmd := nspawnCommand(podDir, args)
	if rc.Interactive {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	} else {
		// Nothing from the pod's system reaches rkt run's stdout: only
		// the apps' output, through the relay.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, stderr, stderr
	}
	cmd.Env = nspawnEnv()
	if rc.IPC == "parent" {
		// The pod stays in the host's IPC namespace.
		cmd.Env = append(cmd.Env, "SYSTEMD_NSPAWN_SHARE_NS_IPC=1")
	}
	if rc.Privileged {
		// /proc/sys and /sys writable in the pod, and no seccomp filter
		// of nspawn's, for privileged apps: the others still get /sys
		// and /proc/sys read-only and a filter from their launcher.
		cmd.Env = append(cmd.Env, "SYSTEMD_NSPAWN_API_VFS_WRITABLE=yes", "SYSTEMD_SECCOMP=0")
	}
	if notify != nil {
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+notify.Path)
	}

	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: unix.SIGKILL}
	if c.Debug {
		fmt.Fprintf(stderr, "stage1: %s\n", strings.Join(cmd.Args, " "))
	}
	privateRunNspawn()

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigc)

	// Pdeathsig fires when the thread that forked exits: keep it.
	runtime.LockOSThread()
	if err := <-joined; err != nil {
		return fail("%v", err)
	}
	if err := cmd.Start(); err != nil {
		relay.abort()
		return fail("start systemd-nspawn: %v", err)
	}
	started = true
	trace("nspawn started")
	if stdinFIFO {
		go feedStdin(filepath.Join(pod.Stage1RootfsPath(podDir), stdinFIFOPath(pm.Apps[0].Name.String())), os.Stdin)
	}
	done := make(chan struct{})
	podPID := make(chan int, 1)
	go func() {
		pid, err := waitPodPID(cmd.Process.Pid, done)
		if err != nil {
			return
		}
		trace("pod's systemd started")
		_ = writeFile(filepath.Join(podDir, pod.PIDFile), strconv.Itoa(pid))
		_ = os.Symlink("ready", filepath.Join(pod.Stage1RootfsPath(podDir), "rkt", "supervisor-status"))
		podPID <- pid
	}()
	go func() {
		pid, stopping := 0, false
		for {
			select {
			case pid = <-podPID:
			case <-sigc:
				switch {
				case pid == 0:
					// Not booted yet: nspawn stops it.
					_ = cmd.Process.Signal(unix.SIGTERM)
				case !stopping:
					// As `rkt stop`: the apps get SIGTERM, then SIGKILL.
					_ = unix.Kill(pid, unix.Signal(sigRTMin+4))
					stopping = true
				default:
					// A second signal: as `rkt stop --force`.
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			case <-done:
				return
			}
		}
	}()
	werr := cmd.Wait()
	trace("pod exited")
	close(done)
	relay.finish()

	if rc.Mutable {
		// A mutable pod ends when stopped, whatever its apps did.
		return 0
	}
	first := pm.Apps[0].Name.String()
	if _, err := os.Stat(filepath.Join(podDir, pod.PIDFile)); err == nil {
		// The pod ran, but its PID 1 died before recording every app
		// (stop --force, or a kill): its apps died by SIGKILL with it.
		for _, a := range pf.apps {
			if _, err := readStatus(podDir, a); err != nil {
				_ = writeFile(pod.AppStatusPath(podDir, a), strconv.Itoa(128+int(unix.SIGKILL)))
			}
		}
	}
	if code, err := readStatus(podDir, first); err == nil {
		return code
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		fmt.Fprintf(stderr, "stage1: pod ended before app %s exited: %v\n", first, werr)
		return ExitLaunchFailed
	}
	if werr != nil {
		return fail("systemd-nspawn: %v", werr)
	}
	return fail("app %s left no exit status", first)
}

// mdsDefaultPort is pkg/mds.DefaultPort, which the pod gets when the
// runtime config names none (pkg/mds itself would bring net/http's
// server into every stage1 mode).
const mdsDefaultPort = 18112

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

func readStatus(podDir, app string) (int, error) {
	b, err := os.ReadFile(pod.AppStatusPath(podDir, app))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// machinedReachable says whether the host runs systemd with a system bus,
// where nspawn registers the pod with systemd-machined and gets a scope
// of its own.
func machinedReachable() bool {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return false
	}
	_, err := os.Stat("/run/dbus/system_bus_socket")
	return err == nil
}

func nspawnArgs(podDir string, c *RunConfig, rc *pod.RuntimeConfig, hostname string, netArgs []string, pf *podFiles) []string {
	s1 := pod.Stage1RootfsPath(podDir)
	args := []string{
		"--quiet",
		"--boot",
		"--directory=" + s1,
		"--machine=rkt-" + c.UUID,
		"--uuid=" + c.UUID,
		"--hostname=" + hostname,
		// The pod's /etc is stage1's own: nothing of the host's is copied.
		"--resolv-conf=off",
		"--timezone=off",
		"--link-journal=no",
		// The pod's units live in two directories: systemd need not look
		// for each unit in the eight it searches by default.
		"--setenv=SYSTEMD_UNIT_PATH=/etc/systemd/system:/usr/lib/systemd/system",
		// The journal is written straight into the stage1 root, so that
		// it outlives the pod for `rkt logs`.
		"--bind=" + filepath.Join(s1, "var/log/journal") + ":/run/log/journal",
	}
	if machinedReachable() {
		args = append(args, "--register=yes")
		// Under a service (a pod run from a unit), the pod registers as
		// that unit: systemd keeps tracking, stopping and restarting it,
		// instead of losing it to a new machine scope.
		if inSystemdService(readSelfCgroup()) {
			args = append(args, "--keep-unit")
		}
	} else {
		args = append(args, "--register=no", "--keep-unit")
	}
	if rc.Interactive {
		args = append(args, "--console=interactive")
	} else {
		args = append(args, "--console=pipe")
	}
	if rc.PrivateUsers != "" {
		pu := rc.PrivateUsers
		if pu == "auto" {
			pu = "pick"
		}
		args = append(args, "--private-users="+pu, "--private-users-ownership=auto")
	}
	args = append(args, netArgs...)
	args = append(args, pf.nspawnBinds...)
	if len(pf.caps) > 0 {
		seen := map[string]bool{}
		var list []string
		for _, c := range pf.caps {
			if !seen[c] {
				seen[c] = true
				list = append(list, c)
			}
		}
		sort.Strings(list)
		args = append(args, "--capability="+strings.Join(list, ","))
	}
	// Arguments of the pod's systemd: quiet, no status on a console
	// nobody reads, logs to the pod's journal.
	logTarget := "journal"
	if rc.Interactive {
		// The console is the app's terminal: systemd must not write there
		// before journald is up.
		logTarget = "null"
	}
	args = append(args, "--", "systemd.show_status=0", "systemd.log_target="+logTarget)
	if c.Debug {
		// Into the pod's journal (rkt logs, journalctl --file), with
		// timestamps: a console in pipe mode shows nothing.
		args = append(args, "systemd.log_level=debug")
	}
	return args
}

// nspawnCommand runs the stage1 image's own systemd-nspawn through the
// image's dynamic loader and libraries, so that the host needs neither
// systemd nor the same libc.
func nspawnCommand(podDir string, args []string) *exec.Cmd {
	return imageCommand(context.Background(), pod.Stage1RootfsPath(podDir), "systemd-nspawn", args)
}

// nspawnEnv is nspawn's environment: no image lock files on the host.
func nspawnEnv() []string {
	env := []string{"SYSTEMD_NSPAWN_LOCK=0", "SYSTEMD_NSPAWN_TMPFS_TMP=0"}
	for _, k := range []string{"PATH", "TERM", "SYSTEMD_LOG_LEVEL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// privateRunNspawn gives nspawn a tmpfs for its per-machine state when
// the host's /run is not one: nspawn refuses to clean up its propagation
// directory on a disk file system and says so on every pod exit. It only
// ever mounts in the pod's own mount namespace, never the host's.
func privateRunNspawn() {
	var st unix.Statfs_t
	if err := unix.Statfs("/run", &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		return
	}
	// stage0 unshared the namespace and exec'd us: whoever ran rkt, and
	// the host's PID 1, are still in the host's. The parent may be out
	// of sight (getppid 0: rkt was started by a process that exited, and
	// adopted from outside this PID namespace); PID 1 is never.
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return
	}
	for _, other := range []string{"/proc/1/ns/mnt", fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid())} {
		if ns, err := os.Readlink(other); err == nil && ns == own {
			return
		}
	}
	_ = os.MkdirAll("/run/systemd/nspawn", 0o755)
	_ = unix.Mount("tmpfs", "/run/systemd/nspawn", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755")
}

// waitPodPID finds the pod's PID 1: nspawn's child in a PID namespace of
// its own (nspawn is a subreaper, so the container's init is reparented
// to it).
func waitPodPID(nspawn int, done <-chan struct{}) (int, error) {
	ownNS, _ := os.Readlink("/proc/self/ns/pid")
	for {
		select {
		case <-done:
			return 0, errors.New("pod exited")
		default:
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
		for _, f := range strings.Fields(string(b)) {
			ns, err := os.Readlink("/proc/" + f + "/ns/pid")
			if err != nil || ns == ownNS {
				continue
			}
			// The init must have exec'd systemd: before that, nspawn's
			// child is still setting the container up.
			if exe, err := os.Readlink("/proc/" + f + "/exe"); err == nil && strings.HasSuffix(exe, "/systemd") {
				pid, _ := strconv.Atoi(f)
				return pid, nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}
