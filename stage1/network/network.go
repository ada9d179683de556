// Package network owns the networking of a pod under the nspawn stage1: it
// creates the pod's network namespace, joins the networks named by --net
// through CNI (libcni and the real plugins of containernetworking/plugins,
// never a bridge or IPAM of our own), forwards ports with the portmap
// plugin, records what it did in the pod directory (netns, net-info.json,
// net/), and undoes all of it at gc, also for a pod killed with SIGKILL.
//
// Setup is called by stage1's run entrypoint before systemd-nspawn starts
// (which then joins the namespace with --network-namespace-path), Teardown
// by its gc entrypoint.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/rktng/rkt/pkg/netconf"
	"github.com/rktng/rkt/pkg/pod"
)

// Sentinel errors, for errors.Is.
var (
	// ErrUnknownNetwork: --net named a network that is neither built in
	// nor configured in net.d (pkg/netconf's).
	ErrUnknownNetwork = netconf.ErrUnknownNetwork
	// ErrBadConfig: a malformed net.d file, --net or --port argument
	// (pkg/netconf's).
	ErrBadConfig = netconf.ErrBadConfig
	// ErrPortInUse: a forwarded host port is already bound on the host.
	ErrPortInUse = errors.New("host port in use")
	// ErrJoin: a CNI plugin refused to add the pod to a network.
	ErrJoin = errors.New("cannot join network")
)

// DefaultNetnsDir is where pods' network namespaces are pinned, beside
// those of `ip netns`.
const DefaultNetnsDir = "/run/netns"

// Config is what Setup needs to know about the pod.
type Config struct {
	// PodDir is the pod directory; UUID the pod's UUID (CNI container ID).
	PodDir string
	UUID   string
	// LocalConfig is --local-config; user networks are LocalConfig/net.d.
	LocalConfig string
	// Nets is RuntimeConfig.Nets; empty means the default network.
	Nets []string
	// Ports are the host ports to forward (see PortsFromManifest).
	Ports []PortMapping
	// PluginDirs are searched in order for CNI plugins; empty means
	// DefaultPluginDirs.
	PluginDirs []string
	// NetnsDir overrides DefaultNetnsDir (tests).
	NetnsDir string
	// IPAMDataDir, if set, becomes the dataDir of every host-local IPAM
	// that has none (tests keep their leases out of /var/lib/cni).
	IPAMDataDir string
	// HostMountNS names the mount namespace that must hold the pin of the
	// network namespace when stage1 runs in a private one (e.g.
	// "/proc/PPID/ns/mnt"); empty means the current one.
	HostMountNS string
	// Stderr receives plugin diagnostics when Debug is set.
	Debug  bool
	Stderr io.Writer
}

// DefaultPluginDirs is where plugins are looked for: the stage1 image's
// own, then the user's next to their configurations, then the host's.
func DefaultPluginDirs(podDir, localConfig string) []string {
	dirs := []string{filepath.Join(pod.Stage1RootfsPath(podDir), "usr", "lib", "cni")}
	if localConfig != "" {
		dirs = append(dirs, filepath.Join(localConfig, "net.d"))
	}
	return append(dirs, "/usr/lib/cni")
}

// Pod is the networking Setup made for a pod.
type Pod struct {
	// NetnsPath is the pod's network namespace, for systemd-nspawn's
	// --network-namespace-path; empty with --net=host.
	NetnsPath string
	// Nets are the joined networks, in order (eth0, eth1, ...).
	Nets []NetInfo
	// DNS merges the DNS settings the plugins returned, for the pod's
	// resolv.conf when the user gave none.
	DNS types.DNS
}

// HostNetwork says whether the pod shares the host's network namespace.
func (p *Pod) HostNetwork() bool { return p.NetnsPath == "" }

// Setup gives the pod its networks. On failure it has torn down whatever
// it had made and the error says which network failed and why.
func Setup(ctx context.Context, cfg Config) (*Pod, error) {
	reqs, err := netconf.ParseRequests(cfg.Nets)
	if err != nil {
		return nil, err
	}
	if reqs[0].Name == NetHost {
		if len(cfg.Ports) > 0 {
			// Nothing to forward to: the apps bind the host's ports.
			return nil, fmt.Errorf("%w: --port needs a pod network, not --net=host", ErrBadConfig)
		}
		return &Pod{}, nil
	}
	var confs []*netConf
	var args []string
	if reqs[0].Name != NetNone {
		user, err := netconf.Load(netconf.Dir(cfg.LocalConfig))
		if err != nil {
			return nil, err
		}
		if confs, args, err = resolveNets(reqs, user); err != nil {
			return nil, err
		}
	} else if len(cfg.Ports) > 0 {
		return nil, fmt.Errorf("%w: --port needs a pod network, not --net=none", ErrBadConfig)
	}
	if err := checkHostPorts(cfg.Ports); err != nil {
		return nil, err
	}
	trace := tracer(cfg.Debug, cfg.Stderr)
	s, err := newSession(cfg.PodDir, cfg.UUID, cfg.PluginDirs, cfg.LocalConfig, cfg.HostMountNS, cfg.Debug, cfg.Stderr)
	if err != nil {
		return nil, err
	}
	defer s.close()

	// Everything that must be undone is recorded before it is done, so a
	// teardown after any failure, or after a SIGKILL, finds it. This first
	// record is the one made durable: host-local's leases outlive a
	// power loss, and only it lets gc free them after the reboot. The
	// namespace and the host's routes and rules do not outlive one, so
	// the netns file and the final record need no fsync.
	infos, lists, err := s.prepare(confs, args, cfg.Ports, cfg.IPAMDataDir)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := writeNetInfo(s.podDir, infos, len(infos) > 0); err != nil {
		return nil, s.fail(ctx, err)
	}
	trace("networks to join recorded")
	dir := cfg.NetnsDir
	if dir == "" {
		dir = DefaultNetnsDir
	}
	nsPath := filepath.Join(dir, "rkt-"+cfg.UUID)
	if err := writeFileAtomic(filepath.Join(s.podDir, pod.NetnsFile), []byte(nsPath), false); err != nil {
		return nil, s.fail(ctx, fmt.Errorf("write netns file: %w", err))
	}
	if err := createNetns(nsPath, s.hostMnt); err != nil {
		return nil, s.fail(ctx, err)
	}
	s.nsPath = nsPath
	trace("namespace pinned")

	p := &Pod{NetnsPath: nsPath}
	// Interface names are fixed already, so the networks are joined at
	// once: a pod's start waits for the slowest plugin chain, not the sum.
	results := make([]types.Result, len(infos))
	errs := make([]error, len(infos))
	var wg sync.WaitGroup
	for i := range infos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.cni.AddNetworkList(ctx, lists[i], s.runtimeConf(&infos[i]))
		}()
	}
	wg.Wait()
	trace("plugins done")
	for i := range infos {
		if errs[i] != nil {
			return nil, s.fail(ctx, fmt.Errorf("%w %q (%s): %v", ErrJoin, infos[i].NetName, confs[i].source, errs[i]))
		}
	}
	// Only now that host-local holds the pod's lease: a gc of the
	// network's last other pod, deciding under the same lock whether a
	// lease is left, then either sees this one and keeps the chain, or
	// has removed the chain already and this makes it again.
	for i, c := range confs {
		if c.masq == nil {
			continue
		}
		sc, err := savedConf(&infos[i])
		if err == nil {
			err = c.masq.ensure(ctx, sc.leaseDir())
		}
		if err != nil {
			return nil, s.fail(ctx, fmt.Errorf("%w %q (%s): %v", ErrJoin, c.name, c.source, err))
		}
		trace("masquerade of " + c.name + " made sure of")
	}
	for i := range infos {
		if err := fillResult(&infos[i], results[i], &p.DNS); err != nil {
			return nil, s.fail(ctx, fmt.Errorf("%w %q: %v", ErrJoin, infos[i].NetName, err))
		}
		infos[i].Joined = true
	}
	if err := writeNetInfo(s.podDir, infos, false); err != nil {
		return nil, s.fail(ctx, err)
	}
	p.Nets = infos
	trace("networks recorded")
	return p, nil
}

// tracer returns a function printing, with --debug, how long Setup has
// been at each step.
func tracer(debug bool, w io.Writer) func(string) {
	if !debug {
		return func(string) {}
	}
	if w == nil {
		w = os.Stderr
	}
	start := time.Now()
	var mu sync.Mutex
	return func(what string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "stage1: network: %s after %v\n", what, time.Since(start).Round(100*time.Microsecond))
	}
}

// TeardownConfig is what Teardown needs; everything else comes from the
// pod directory.
type TeardownConfig struct {
	PodDir string
	// UUID defaults to the pod directory's name.
	UUID        string
	LocalConfig string
	PluginDirs  []string
	HostMountNS string
	Debug       bool
	Stderr      io.Writer
}

// Teardown runs CNI DEL for every network the pod directory records, in
// reverse order, and removes the network namespace. It works whether the
// pod exited, was killed, or never finished Setup, and doing it twice is
// harmless. If a plugin fails, the records stay for another try.
func Teardown(ctx context.Context, cfg TeardownConfig) error {
	uuid := cfg.UUID
	if uuid == "" {
		uuid = filepath.Base(filepath.Clean(cfg.PodDir))
	}
	s, err := newSession(cfg.PodDir, uuid, cfg.PluginDirs, cfg.LocalConfig, cfg.HostMountNS, cfg.Debug, cfg.Stderr)
	if err != nil {
		return err
	}
	defer s.close()
	return s.teardown(ctx)
}

// session is one Setup or Teardown.
type session struct {
	podDir, uuid string
	cni          *libcni.CNIConfig
	pluginDirs   []string
	hostMnt      *os.File
	nsPath       string
}

func newSession(podDir, uuid string, pluginDirs []string, localConfig, hostMountNSPath string, debug bool, stderr io.Writer) (*session, error) {
	if podDir == "" || uuid == "" {
		return nil, errors.New("network: pod directory and UUID are required")
	}
	if len(pluginDirs) == 0 {
		pluginDirs = DefaultPluginDirs(podDir, localConfig)
	}
	hostMnt, err := hostMountNS(hostMountNSPath)
	if err != nil {
		return nil, err
	}
	// Plugins write their diagnostics to stderr; only show them on --debug.
	var errw io.Writer = io.Discard
	if debug {
		errw = stderr
		if errw == nil {
			errw = os.Stderr
		}
	}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: errw}}
	// libcni's result cache lives in the pod directory, so that nothing of
	// the pod is kept in /var/lib/cni and gc removes it with the pod.
	c := libcni.NewCNIConfigWithCacheDir(pluginDirs, filepath.Join(confDir(podDir), "cache"), exec)
	return &session{podDir: podDir, uuid: uuid, cni: c, pluginDirs: pluginDirs, hostMnt: hostMnt}, nil
}

func (s *session) close() {
	if s.hostMnt != nil {
		s.hostMnt.Close()
	}
}

// prepare saves each network's effective configuration in the pod
// directory and returns the records and parsed lists, in join order.
func (s *session) prepare(confs []*netConf, args []string, ports []PortMapping, ipamDir string) ([]NetInfo, []*libcni.NetworkConfigList, error) {
	infos := make([]NetInfo, 0, len(confs))
	lists := make([]*libcni.NetworkConfigList, 0, len(confs))
	portsPlaced := len(ports) == 0
	for i, c := range confs {
		info := NetInfo{NetName: c.name, IfName: fmt.Sprintf("eth%d", i), Args: args[i]}
		// Ports go over the first network that can forward them: a
		// built-in one (portmap is chained only when needed, as it costs
		// a plugin run) or a user network whose list has portmap.
		if !portsPlaced {
			if strings.HasPrefix(c.source, "built-in") {
				c = cloneConf(c)
				pm := map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}}
				// Named, the backend spares portmap two iptables runs
				// probing for it; left unnamed, it finds nftables on a
				// host without iptables.
				if _, err := exec.LookPath("iptables"); err == nil {
					pm["backend"] = "iptables"
				}
				c.appendPlugin(pm)
			}
			if c.hasCapability("portMappings") {
				info.PortMappings = ports
				portsPlaced = true
			}
		}
		if ipamDir != "" {
			c = cloneConf(c)
			c.setIPAMDataDir(ipamDir)
		}
		list, err := c.list()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
		}
		b, err := c.bytes()
		if err != nil {
			return nil, nil, err
		}
		info.NetConf = c.source
		info.Config = b
		if p, err := invoke.FindInPath(c.mainType(), s.pluginDirs); err == nil {
			info.PluginPath = p
		} else {
			return nil, nil, fmt.Errorf("%w %q (%s): plugin %q not found in %s", ErrJoin, c.name, c.source, c.mainType(), strings.Join(s.pluginDirs, ":"))
		}
		infos = append(infos, info)
		lists = append(lists, list)
	}
	if !portsPlaced {
		return nil, nil, fmt.Errorf("%w: ports to forward, but none of the pod's networks has the portmap plugin", ErrBadConfig)
	}
	return infos, lists, nil
}

// cloneConf deep-copies a configuration so that per-pod changes never touch
// the shared built-ins.
func cloneConf(c *netConf) *netConf {
	return &netConf{name: c.name, source: c.source, masq: c.masq, raw: deepCopy(c.raw).(map[string]any)}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

func (s *session) runtimeConf(info *NetInfo) *libcni.RuntimeConf {
	args, _ := netconf.CNIArgs(info.Args) // validated by ParseRequests
	rt := &libcni.RuntimeConf{ContainerID: s.uuid, NetNS: s.nsPath, IfName: info.IfName, Args: args}
	if len(info.PortMappings) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": info.PortMappings}
	}
	return rt
}

// fillResult records the addresses a plugin chain returned.
func fillResult(info *NetInfo, res types.Result, dns *types.DNS) error {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("unexpected result: %w", err)
	}
	for _, ipc := range r.IPs {
		info.IPs = append(info.IPs, ipc.Address.String())
		if info.IP == "" && ipc.Address.IP.To4() != nil {
			info.IP = ipc.Address.IP.String()
			info.Mask = net.IP(ipc.Address.Mask).String()
			if ipc.Gateway != nil {
				info.Gateway = ipc.Gateway.String()
			}
		}
	}
	if info.IP == "" && len(r.IPs) > 0 {
		ipc := r.IPs[0]
		info.IP = ipc.Address.IP.String()
		ones, _ := ipc.Address.Mask.Size()
		info.Mask = fmt.Sprint(ones)
		if ipc.Gateway != nil {
			info.Gateway = ipc.Gateway.String()
		}
	}
	dns.Nameservers = appendNew(dns.Nameservers, r.DNS.Nameservers...)
	dns.Search = appendNew(dns.Search, r.DNS.Search...)
	dns.Options = appendNew(dns.Options, r.DNS.Options...)
	if dns.Domain == "" {
		dns.Domain = r.DNS.Domain
	}
	return nil
}

func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, l := range list {
			dup = dup || l == a
		}
		if !dup {
			list = append(list, a)
		}
	}
	return list
}

// fail tears down a failed Setup and returns its error, with the teardown's
// own failure added if there was one.
func (s *session) fail(ctx context.Context, err error) error {
	// The caller's context may be what failed; cleaning up must not.
	if terr := s.teardown(context.WithoutCancel(ctx)); terr != nil {
		return fmt.Errorf("%w (and cleaning up: %v)", err, terr)
	}
	return err
}

// teardown undoes what the pod directory records.
func (s *session) teardown(ctx context.Context) error {
	infos, err := ReadNetInfo(s.podDir)
	if err != nil {
		return err
	}
	nsPath, err := ReadNetnsPath(s.podDir)
	if err != nil {
		return err
	}
	// Plugins open the namespace by path; when it is pinned only in the
	// host's mount namespace they get it through our descriptor.
	s.nsPath = ""
	if nsPath != "" {
		f, err := openNetns(nsPath, s.hostMnt)
		switch {
		case err == nil:
			defer f.Close()
			s.nsPath = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
		case errors.Is(err, errNoNetns):
			// Gone already (a reboot): DEL still frees leases and rules
			// that do not need it.
		default:
			return err
		}
	}
	var errs []error
	for i := len(infos) - 1; i >= 0; i-- {
		info := &infos[i]
		list, err := loadSavedList(info)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.cni.DelNetworkList(ctx, list, s.runtimeConf(info)); err != nil {
			errs = append(errs, fmt.Errorf("leave network %q: %w", info.NetName, err))
			continue
		}
		// The pod's lease is free: the default network's shared
		// masquerade goes if it was the last one.
		if sc, err := savedConf(info); err == nil && sc.sharesMasq() {
			if m := defaultMasq(); m != nil {
				if err := m.release(ctx, sc.leaseDir()); err != nil {
					errs = append(errs, fmt.Errorf("leave network %q: %w", info.NetName, err))
				}
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if nsPath != "" {
		if err := removeNetns(nsPath, s.hostMnt); err != nil {
			return err
		}
	}
	for _, f := range []string{pod.NetInfoFile, pod.NetnsFile} {
		if err := os.Remove(filepath.Join(s.podDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f, err)
		}
	}
	if err := os.RemoveAll(confDir(s.podDir)); err != nil {
		return fmt.Errorf("remove %s: %w", confDir(s.podDir), err)
	}
	return nil
}

// savedConf is the configuration a network was joined with, as the pod's
// record keeps it.
func savedConf(info *NetInfo) (*netConf, error) {
	var raw map[string]any
	if err := json.Unmarshal(info.Config, &raw); err != nil {
		return nil, fmt.Errorf("network %q: recorded configuration: %w", info.NetName, err)
	}
	return &netConf{name: info.NetName, source: info.NetConf, raw: raw}, nil
}

func loadSavedList(info *NetInfo) (*libcni.NetworkConfigList, error) {
	l, err := libcni.NetworkConfFromBytes(info.Config)
	if err != nil {
		return nil, fmt.Errorf("leave network %q: recorded configuration: %w", info.NetName, err)
	}
	return l, nil
}
