package network

// These tests run the real CNI plugins (make cni-plugins) as root against a
// fake pod directory and look at the real result: addresses and routes in
// the namespace, host routes, iptables rules, host-local leases, and that
// all of it is gone after Teardown. Leases go to a temporary IPAM data
// directory and namespaces are pinned in a temporary directory; the only
// traffic is between the host and the namespaces made here. Subnets are
// 10.231.x.0/24 where the test chooses, and high addresses of the built-in
// ranges where it cannot, to stay clear of real pods on this host.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/rktng/rkt/pkg/pod"
)

func pluginDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	dir := os.Getenv("CNI_PLUGINS_DIR")
	if dir == "" {
		dir, _ = filepath.Abs("../../build/cni-plugins")
	}
	if _, err := os.Stat(filepath.Join(dir, "ptp")); err != nil {
		t.Fatalf("CNI plugins not built (run `make cni-plugins`): %v", err)
	}
	return dir
}

// fixture is one fake pod with private netns, IPAM and config directories.
type fixture struct {
	t                                       *testing.T
	uuid, podDir, nsDir, ipamDir, localConf string
	plugins                                 string
}

func newUUID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newFixture(t *testing.T) *fixture {
	plugins := pluginDir(t)
	root := t.TempDir()
	f := &fixture{t: t, uuid: newUUID(t), plugins: plugins,
		nsDir: filepath.Join(root, "netns"), ipamDir: filepath.Join(root, "ipam"),
		localConf: filepath.Join(root, "local-config")}
	f.podDir = filepath.Join(root, "pods", "run", f.uuid)
	for _, d := range []string{f.podDir, filepath.Join(f.localConf, "net.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Whatever a failing test left, take it down.
	t.Cleanup(func() { _ = Teardown(context.Background(), f.teardownConfig()) })
	return f
}

func (f *fixture) config(nets ...string) Config {
	return Config{PodDir: f.podDir, UUID: f.uuid, LocalConfig: f.localConf, Nets: nets,
		PluginDirs: []string{f.plugins}, NetnsDir: f.nsDir, IPAMDataDir: f.ipamDir}
}

func (f *fixture) teardownConfig() TeardownConfig {
	return TeardownConfig{PodDir: f.podDir, LocalConfig: f.localConf, PluginDirs: []string{f.plugins}}
}

func (f *fixture) writeConf(name, content string) string {
	p := filepath.Join(f.localConf, "net.d", name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// ptpConf is a user network like the default one on its own subnet.
func ptpConf(name, subnet string, masq bool) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"ptp","ipMasq":%v,
		"ipam":{"type":"host-local","subnet":%q,"routes":[{"dst":"0.0.0.0/0"}]}}`, name, masq, subnet)
}

func (f *fixture) setup(cfg Config) *Pod {
	f.t.Helper()
	p, err := Setup(context.Background(), cfg)
	if err != nil {
		f.t.Fatalf("Setup: %v", err)
	}
	return p
}

func (f *fixture) teardown() {
	f.t.Helper()
	if err := Teardown(context.Background(), f.teardownConfig()); err != nil {
		f.t.Fatalf("Teardown: %v", err)
	}
}

// inNS runs a command inside the namespace.
func inNS(t *testing.T, nsPath string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %v: %v\n%s", nsPath, args, err, out)
	}
	return string(out)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// serveIn listens on addr inside the namespace and greets every client.
func serveIn(t *testing.T, nsPath, addr, greeting string) {
	t.Helper()
	var l net.Listener
	err := inThread(func() error {
		ns, err := os.Open(nsPath)
		if err != nil {
			return err
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return err
		}
		// A socket belongs to the namespace it was made in, whatever
		// thread uses it later.
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", nsPath, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, greeting)
			c.Close()
		}
	}()
}

// serveRemoteAddrIn listens on addr inside the namespace and tells every
// client the address it came from.
func serveRemoteAddrIn(t *testing.T, nsPath, addr string) {
	t.Helper()
	var l net.Listener
	err := inThread(func() error {
		ns, err := os.Open(nsPath)
		if err != nil {
			return err
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return err
		}
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", nsPath, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = io.WriteString(c, host)
			c.Close()
		}
	}()
}

func expectGreeting(t *testing.T, addr, want string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Fatalf("from %s: got %q, %v; want %q", addr, got, err, want)
	}
}

// otherHost makes a namespace standing for another machine, linked to this
// host by a veth pair on 10.231.20.0/30, and returns it with the host's
// address on that link.
func otherHost(t *testing.T, dir string) (nsPath, hostAddr string) {
	t.Helper()
	nsPath = filepath.Join(dir, "other-host")
	if err := createNetns(nsPath, nil); err != nil {
		t.Fatal(err)
	}
	const hostIf = "rktnt-other"
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostIf).Run()
		_ = removeNetns(nsPath, nil)
	})
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", hostIf+"-r")
	run(t, "ip", "link", "set", hostIf+"-r", "netns", nsPath)
	inNS(t, nsPath, "ip", "link", "set", hostIf+"-r", "name", "eth0")
	inNS(t, nsPath, "ip", "addr", "add", "10.231.20.2/30", "dev", "eth0")
	inNS(t, nsPath, "ip", "link", "set", "eth0", "up")
	inNS(t, nsPath, "ip", "route", "add", "default", "via", "10.231.20.1")
	run(t, "ip", "addr", "add", "10.231.20.1/30", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	return nsPath, "10.231.20.1"
}

// expectGreetingFrom dials addr from inside the namespace.
func expectGreetingFrom(t *testing.T, nsPath, addr, want string) {
	t.Helper()
	var c net.Conn
	err := inThread(func() error {
		ns, err := os.Open(nsPath)
		if err != nil {
			return err
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return err
		}
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, nsPath, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Fatalf("from %s via %s: got %q, %v; want %q", addr, nsPath, got, err, want)
	}
}

// unusedIP picks an address of a built-in range (prefix is its first three
// octets) that no pod on this host holds: no host route, no lease in the
// real IPAM directory. Tests keep their own leases, so without this they
// could hand out the address of a real pod running meanwhile.
func unusedIP(t *testing.T, prefix, network string) string {
	t.Helper()
	for i := 254; i > 100; i-- {
		ip := fmt.Sprintf("%s.%d", prefix, i)
		if strings.TrimSpace(run(t, "ip", "route", "show", "exact", ip+"/32")) != "" {
			continue
		}
		if _, err := os.Stat(filepath.Join("/var/lib/cni/networks", network, ip)); err == nil {
			continue
		}
		return ip
	}
	t.Fatalf("no unused address in %s.0/24", prefix)
	return ""
}

// restricted asks for default-restricted explicitly, on an unused address.
func restricted(t *testing.T) string {
	return "default-restricted:IP=" + unusedIP(t, "172.31.250", NetDefaultRestricted)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// podTraces lists what of the pod is on the host: iptables lines naming
// its ID or the chains derived from it, routes to its addresses, leases,
// its pinned namespace, and its records in the pod directory.
func (f *fixture) podTraces(nets []string, ips []string) []string {
	f.t.Helper()
	var found []string
	var marks []string
	marks = append(marks, f.uuid)
	for _, n := range nets {
		sum := sha512.Sum512([]byte(n + f.uuid))
		marks = append(marks, hex.EncodeToString(sum[:])[:16])
	}
	for _, ip := range ips {
		marks = append(marks, ip+"/", ip+":")
	}
	for _, table := range []string{"nat", "filter", "mangle"} {
		s := bufio.NewScanner(strings.NewReader(run(f.t, "iptables-save", "-t", table)))
		for s.Scan() {
			for _, m := range marks {
				if strings.Contains(s.Text(), m) {
					found = append(found, "iptables: "+s.Text())
					break
				}
			}
		}
	}
	for _, ip := range ips {
		if r := strings.TrimSpace(run(f.t, "ip", "route", "show", "exact", ip+"/32")); r != "" {
			found = append(found, "route: "+r)
		}
	}
	leases, _ := filepath.Glob(filepath.Join(f.ipamDir, "*", "*"))
	for _, l := range leases {
		if b := filepath.Base(l); b != "lock" && !strings.HasPrefix(b, "last_reserved_ip") {
			found = append(found, "lease: "+l)
		}
	}
	if ents, _ := os.ReadDir(f.nsDir); len(ents) > 0 {
		found = append(found, "netns: "+ents[0].Name())
	}
	for _, n := range []string{pod.NetInfoFile, pod.NetnsFile, "net"} {
		if _, err := os.Stat(filepath.Join(f.podDir, n)); err == nil {
			found = append(found, "pod dir: "+n)
		}
	}
	return found
}

func (f *fixture) assertClean(nets []string, ips []string) {
	f.t.Helper()
	if tr := f.podTraces(nets, ips); len(tr) > 0 {
		f.t.Errorf("left on the host:\n%s", strings.Join(tr, "\n"))
	}
}

// hostVeth is the host end of the link carrying ip.
func hostVeth(t *testing.T, ip string) string {
	fields := strings.Fields(run(t, "ip", "route", "show", "exact", ip+"/32"))
	for i, w := range fields {
		if w == "dev" && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	t.Fatalf("no host route to %s", ip)
	return ""
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

func TestDefaultNetworkWithPortForward(t *testing.T) {
	f := newFixture(t)
	ip := unusedIP(t, "172.16.28", NetDefault)
	cfg := f.config("default:IP=" + ip)
	hostPort := freePort(t)
	cfg.Ports = []PortMapping{{Name: "http", HostPort: hostPort, ContainerPort: 8080, Protocol: "tcp"}}
	p := f.setup(cfg)

	if len(p.Nets) != 1 {
		t.Fatalf("nets = %+v, want only default", p.Nets)
	}
	n := p.Nets[0]
	if n.NetName != "default" || n.IfName != "eth0" || n.IP != ip || n.Mask != "255.255.255.0" || n.Gateway != "172.16.28.1" || !n.Joined {
		t.Fatalf("net = %+v", n)
	}
	recorded, err := ReadNetInfo(f.podDir)
	if err != nil || len(recorded) != 1 || recorded[0].IP != n.IP {
		t.Fatalf("net-info.json = %+v, %v", recorded, err)
	}
	if ns, _ := ReadNetnsPath(f.podDir); ns != p.NetnsPath || !strings.HasPrefix(ns, f.nsDir) {
		t.Fatalf("netns file says %q, Setup returned %q", ns, p.NetnsPath)
	}

	addrs := inNS(t, p.NetnsPath, "ip", "-o", "addr", "show")
	for _, want := range []string{"lo    inet 127.0.0.1/8", "eth0    inet " + ip + "/24"} {
		if !strings.Contains(strings.Join(strings.Fields(addrs), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("namespace lacks %q:\n%s", want, addrs)
		}
	}
	if routes := inNS(t, p.NetnsPath, "ip", "route", "show", "default"); !strings.Contains(routes, "via 172.16.28.1 dev eth0") {
		t.Errorf("no default route via the host:\n%s", routes)
	}
	veth := hostVeth(t, n.IP)
	lease, err := os.ReadFile(filepath.Join(f.ipamDir, "default", n.IP))
	if err != nil || !strings.Contains(string(lease), f.uuid) {
		t.Errorf("host-local lease: %q, %v", lease, err)
	}
	traces := strings.Join(f.podTraces([]string{"default"}, nil), "\n")
	if !strings.Contains(traces, "DNAT") {
		t.Errorf("no DNAT rule for the pod:\n%s", traces)
	}
	// The default network's masquerade is shared by its pods: nothing of
	// it names this one, and it is there.
	if strings.Contains(traces, "MASQUERADE") {
		t.Errorf("a masquerade rule of the pod's own:\n%s", traces)
	}
	nat := run(t, "iptables", "-w", "-t", "nat", "-S")
	for _, want := range []string{"-A POSTROUTING -s 172.16.28.0/24 -m comment --comment \"" + defaultMasq().comment + "\" -j " + DefaultMasqChain,
		"-A " + DefaultMasqChain + " -j MASQUERADE"} {
		if !strings.Contains(nat, want) {
			t.Errorf("nat table lacks %q:\n%s", want, nat)
		}
	}

	// The pod's lease keeps the chain: its directory is listed.
	leaseDir := filepath.Join(f.ipamDir, "default")
	if dirs, err := defaultMasq().readDirs(); err != nil || !slices.Contains(dirs, leaseDir) {
		t.Errorf("%s not among the lease directories keeping %s: %q, %v", leaseDir, DefaultMasqChain, dirs, err)
	}

	serveIn(t, p.NetnsPath, ":8080", "hello from the pod")
	expectGreeting(t, net.JoinHostPort(n.IP, "8080"), "hello from the pod")
	// The forwarded port from the host's own loopback: portmap's hairpin
	// masquerade and route_localnet on the host end.
	expectGreeting(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)), "hello from the pod")
	// And from another host: a namespace of our own linked to this host,
	// whose packets arrive from outside and take the PREROUTING path.
	remote, hostAddr := otherHost(t, t.TempDir())
	expectGreetingFrom(t, remote, net.JoinHostPort(hostAddr, strconv.Itoa(hostPort)), "hello from the pod")
	// The pod reaches the other host masqueraded: from the host's own
	// address on that link, not its 172.16.28.x one.
	serveRemoteAddrIn(t, remote, ":8082")
	expectGreetingFrom(t, p.NetnsPath, "10.231.20.2:8082", hostAddr)

	f.teardown()
	f.assertClean([]string{"default"}, []string{n.IP})
	if linkExists(veth) {
		t.Errorf("host veth %s left", veth)
	}
	// Its lease gone, the pod's directory keeps the chain no more (other
	// pods on this host may still).
	if dirs, err := defaultMasq().readDirs(); err != nil || slices.Contains(dirs, leaseDir) {
		t.Errorf("%s still among the lease directories keeping %s: %q, %v", leaseDir, DefaultMasqChain, dirs, err)
	}
	// Again: nothing to do, no error.
	f.teardown()
}

func TestDefaultRestrictedWhenDefaultAbsent(t *testing.T) {
	f := newFixture(t)
	f.writeConf("10-nt1.conf", ptpConf("nt1", "10.231.1.0/24", false))
	p := f.setup(f.config("nt1"))
	if len(p.Nets) != 2 || p.Nets[0].NetName != "nt1" || p.Nets[1].NetName != "default-restricted" ||
		p.Nets[0].IfName != "eth0" || p.Nets[1].IfName != "eth1" {
		t.Fatalf("nets = %+v, want nt1 on eth0 then default-restricted on eth1", p.Nets)
	}
	r := p.Nets[1]
	if _, sub, _ := net.ParseCIDR(DefaultRestrictedSubnet); !sub.Contains(net.ParseIP(r.IP)) {
		t.Fatalf("default-restricted address %s outside %s", r.IP, DefaultRestrictedSubnet)
	}
	// The restricted network routes nothing but its own link: the pod's
	// only default route is nt1's.
	routes := inNS(t, p.NetnsPath, "ip", "route", "show")
	for _, l := range strings.Split(strings.TrimSpace(routes), "\n") {
		if strings.Contains(l, "eth1") && !strings.Contains(l, r.Gateway) && !strings.HasPrefix(l, "172.31.") {
			t.Errorf("default-restricted route beyond the host: %q", l)
		}
	}
	if strings.Contains(routes, "default via "+r.Gateway) {
		t.Errorf("default route over default-restricted:\n%s", routes)
	}
	serveIn(t, p.NetnsPath, ":8081", "restricted")
	expectGreeting(t, net.JoinHostPort(r.IP, "8081"), "restricted")
	ips := []string{p.Nets[0].IP, r.IP}
	f.teardown()
	f.assertClean([]string{"nt1", "default-restricted"}, ips)
}

func TestUserBridgeStaticIP(t *testing.T) {
	f := newFixture(t)
	const bridge = "rktnettest0"
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	f.writeConf("20-br.conflist", `{"cniVersion":"1.0.0","name":"nt-br","plugins":[
		{"type":"bridge","bridge":"`+bridge+`","isGateway":true,"ipMasq":true,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.231.2.0/24"}]]}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	cfg := f.config("nt-br:IP=10.231.2.42", "default:IP="+unusedIP(t, "172.16.28", NetDefault))
	hostPort := freePort(t)
	cfg.Ports = []PortMapping{{HostPort: hostPort, ContainerPort: 8082, Protocol: "tcp"}}
	p := f.setup(cfg)
	if len(p.Nets) != 2 || p.Nets[0].IP != "10.231.2.42" || p.Nets[1].NetName != "default" {
		t.Fatalf("nets = %+v", p.Nets)
	}
	// Ports go over the first network able to forward them.
	if len(p.Nets[0].PortMappings) != 1 || len(p.Nets[1].PortMappings) != 0 {
		t.Fatalf("port mappings placed on %+v", p.Nets)
	}
	if !linkExists(bridge) {
		t.Fatalf("bridge %s not made", bridge)
	}
	serveIn(t, p.NetnsPath, ":8082", "bridged")
	expectGreeting(t, "10.231.2.42:8082", "bridged")
	expectGreeting(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)), "bridged")
	f.teardown()
	f.assertClean([]string{"nt-br", "default"}, []string{"10.231.2.42", p.Nets[1].IP})
}

func TestNoneAndHost(t *testing.T) {
	f := newFixture(t)
	p := f.setup(f.config("none"))
	if len(p.Nets) != 0 || p.NetnsPath == "" {
		t.Fatalf("none: %+v", p)
	}
	links := strings.TrimSpace(inNS(t, p.NetnsPath, "ip", "-o", "link", "show"))
	if strings.Count(links, "\n") != 0 || !strings.Contains(links, "lo:") || !strings.Contains(links, "UP") {
		t.Fatalf("none: want only lo, up:\n%s", links)
	}
	f.teardown()
	f.assertClean(nil, nil)

	p = f.setup(f.config("host"))
	if !p.HostNetwork() || len(p.Nets) != 0 {
		t.Fatalf("host: %+v", p)
	}
	f.assertClean(nil, nil)
}

func TestBadConfiguration(t *testing.T) {
	t.Run("malformed file", func(t *testing.T) {
		f := newFixture(t)
		path := f.writeConf("30-broken.conf", `{"cniVersion":"1.0.0","name":"broken",`)
		_, err := Setup(context.Background(), f.config("default"))
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want ErrBadConfig naming %s", err, path)
		}
		f.assertClean(nil, nil)
	})
	t.Run("unknown network", func(t *testing.T) {
		f := newFixture(t)
		_, err := Setup(context.Background(), f.config("nosuchnet"))
		if !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "nosuchnet") {
			t.Fatalf("err = %v, want ErrUnknownNetwork", err)
		}
		f.assertClean(nil, nil)
	})
	t.Run("bad args", func(t *testing.T) {
		f := newFixture(t)
		_, err := Setup(context.Background(), f.config("default:IP"))
		if !errors.Is(err, ErrBadConfig) {
			t.Fatalf("err = %v, want ErrBadConfig", err)
		}
		_, err = Setup(context.Background(), f.config("host", "default"))
		if !errors.Is(err, ErrBadConfig) {
			t.Fatalf("err = %v, want ErrBadConfig", err)
		}
		f.assertClean(nil, nil)
	})
	t.Run("IP outside the range, after a joined network", func(t *testing.T) {
		f := newFixture(t)
		f.writeConf("10-nt1.conf", ptpConf("nt1", "10.231.3.0/24", true))
		f.writeConf("20-nt2.conf", ptpConf("nt2", "10.231.4.0/24", true))
		_, err := Setup(context.Background(), f.config("nt1", "nt2:IP=10.9.9.9", restricted(t)))
		if !errors.Is(err, ErrJoin) || !strings.Contains(err.Error(), `"nt2"`) || !strings.Contains(err.Error(), "10.9.9.9") {
			t.Fatalf("err = %v, want ErrJoin naming nt2 and the address", err)
		}
		// nt1 was joined first, then torn down with the rest.
		f.assertClean([]string{"nt1", "nt2", "default-restricted"}, []string{"10.231.3.2", "10.231.4.2"})
	})
	t.Run("host port in use", func(t *testing.T) {
		f := newFixture(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := f.config("default")
		cfg.Ports = []PortMapping{{HostPort: l.Addr().(*net.TCPAddr).Port, ContainerPort: 80, Protocol: "tcp"}}
		_, err = Setup(context.Background(), cfg)
		if !errors.Is(err, ErrPortInUse) {
			t.Fatalf("err = %v, want ErrPortInUse", err)
		}
		f.assertClean([]string{"default"}, nil)
	})
}

// TestPinnedInHostMountNamespace is the stage1 situation: Setup runs in a
// private mount namespace (stage0 makes one for the pod's mounts) whose
// processes all die, as with a SIGKILLed pod. The namespace must still be
// there for Teardown, or ptp's masquerade rules could never be removed.
func TestPinnedInHostMountNamespace(t *testing.T) {
	f := newFixture(t)
	f.writeConf("10-nt5.conf", ptpConf("nt5", "10.231.5.0/24", true))
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSetupInPrivateMountNS$", "-test.v")
	cmd.Env = append(os.Environ(), "NETTEST_HELPER=1", "NETTEST_POD="+f.podDir, "NETTEST_UUID="+f.uuid,
		"NETTEST_LOCAL="+f.localConf, "NETTEST_PLUGINS="+f.plugins, "NETTEST_NSDIR="+f.nsDir,
		"NETTEST_IPAM="+f.ipamDir, "NETTEST_RESTRICTED="+restricted(t), fmt.Sprintf("NETTEST_HOSTMNT=/proc/%d/ns/mnt", os.Getpid()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "helper done") {
		t.Fatalf("setup in a private mount namespace: %v\n%s", err, out)
	}
	nets, err := ReadNetInfo(f.podDir)
	if err != nil || len(nets) != 2 {
		t.Fatalf("net-info.json: %+v, %v", nets, err)
	}
	nsPath, _ := ReadNetnsPath(f.podDir)
	ns, err := os.Open(nsPath)
	if err != nil || !isNetns(ns) {
		t.Fatalf("namespace not pinned in the host mount namespace after its creator died: %v", err)
	}
	ns.Close()
	traces := strings.Join(f.podTraces([]string{"nt5"}, nil), "\n")
	if !strings.Contains(traces, "MASQUERADE") {
		t.Fatalf("no masquerade rule:\n%s", traces)
	}
	f.teardown()
	f.assertClean([]string{"nt5", "default-restricted"}, []string{nets[0].IP, nets[1].IP})
}

func TestHelperSetupInPrivateMountNS(t *testing.T) {
	if os.Getenv("NETTEST_HELPER") == "" {
		t.Skip("helper for TestPinnedInHostMountNamespace")
	}
	cfg := Config{PodDir: os.Getenv("NETTEST_POD"), UUID: os.Getenv("NETTEST_UUID"),
		LocalConfig: os.Getenv("NETTEST_LOCAL"), Nets: []string{"nt5", os.Getenv("NETTEST_RESTRICTED")},
		PluginDirs: []string{os.Getenv("NETTEST_PLUGINS")}, NetnsDir: os.Getenv("NETTEST_NSDIR"),
		IPAMDataDir: os.Getenv("NETTEST_IPAM"), HostMountNS: os.Getenv("NETTEST_HOSTMNT")}
	p, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	fmt.Printf("%s\nhelper done\n", b)
}

func TestDNSFromResult(t *testing.T) {
	f := newFixture(t)
	f.writeConf("10-nt6.conf", `{"cniVersion":"1.0.0","name":"nt6","type":"ptp",
		"dns":{"nameservers":["10.231.6.1"],"search":["pod.test"],"options":["ndots:2"]},
		"ipam":{"type":"host-local","subnet":"10.231.6.0/24"}}`)
	p := f.setup(f.config("nt6", restricted(t)))
	want := "nameserver 10.231.6.1\n"
	if rc := p.ResolvConf(); !strings.Contains(rc, want) || !strings.Contains(rc, "search pod.test\n") || !strings.Contains(rc, "options ndots:2\n") {
		t.Errorf("resolv.conf from the CNI result:\n%s", rc)
	}
	ips := []string{p.Nets[0].IP, p.Nets[1].IP}
	f.teardown()
	f.assertClean([]string{"nt6", "default-restricted"}, ips)
}

func TestPortsFromManifest(t *testing.T) {
	var pm schema.PodManifest
	if err := json.Unmarshal([]byte(`{"acKind":"PodManifest","acVersion":"0.8.11",
		"apps":[{"name":"web","image":{"id":"sha512-0000000000000000000000000000000000000000000000000000000000000000"},
		  "app":{"exec":["/web"],"user":"0","group":"0","ports":[{"name":"http","protocol":"tcp","port":8080}]}}],
		"ports":[{"name":"http","hostPort":18080},{"name":"dns","hostPort":5353,"hostIP":"127.0.0.1","podPort":{"name":"dns","protocol":"udp","port":53}}]}`), &pm); err != nil {
		t.Fatal(err)
	}
	ports, err := PortsFromManifest(&pm)
	if err != nil {
		t.Fatal(err)
	}
	want := []PortMapping{{Name: "http", HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"},
		{Name: "dns", HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"}}
	if fmt.Sprint(ports) != fmt.Sprint(want) {
		t.Fatalf("ports = %v, want %v", ports, want)
	}
	pm.Ports = append(pm.Ports, types.ExposedPort{Name: "nope", HostPort: 1})
	if _, err := PortsFromManifest(&pm); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unnamed port: %v", err)
	}
}

// A pod killed after CNI ADD but before Setup wrote its final record has
// only the first one (networks not yet joined, no addresses): teardown
// must still undo everything.
func TestTeardownAfterKillDuringSetup(t *testing.T) {
	f := newFixture(t)
	f.writeConf("10-nt7.conf", ptpConf("nt7", "10.231.10.0/24", true))
	p := f.setup(f.config("nt7", restricted(t)))
	ips := []string{p.Nets[0].IP, p.Nets[1].IP}
	nets, err := ReadNetInfo(f.podDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nets {
		nets[i].Joined, nets[i].IP, nets[i].IPs, nets[i].Mask = false, "", nil, ""
	}
	if err := writeNetInfo(f.podDir, nets, false); err != nil {
		t.Fatal(err)
	}
	f.teardown()
	f.assertClean([]string{"nt7", "default-restricted"}, ips)
}

// After a reboot the namespace is gone but host-local's leases are not:
// teardown frees them and does not fail.
func TestTeardownWithoutNamespace(t *testing.T) {
	f := newFixture(t)
	f.writeConf("10-nt8.conf", ptpConf("nt8", "10.231.11.0/24", false))
	p := f.setup(f.config("nt8", restricted(t)))
	if err := removeNetns(p.NetnsPath, nil); err != nil {
		t.Fatal(err)
	}
	f.teardown()
	// The unpinned namespace, and with it the pod's veths and their host
	// routes, is destroyed by the kernel's netns cleanup work, after
	// removeNetns returns: on a busy host, a moment later.
	nets, ips := []string{"nt8", "default-restricted"}, []string{p.Nets[0].IP, p.Nets[1].IP}
	for deadline := time.Now().Add(10 * time.Second); len(f.podTraces(nets, ips)) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	f.assertClean(nets, ips)
}

// TestInThreadSparesMainThread: namespaces changed by inThread must never
// be the main thread's, which /proc/PID/ns shows to `rkt stop` and `rkt
// enter` looking for the pod's mounts.
func TestInThreadSparesMainThread(t *testing.T) {
	self := fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	before, err := os.Readlink(self)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := inThread(func() error { return unix.Unshare(unix.CLONE_NEWNET) }); err != nil {
			t.Fatal(err)
		}
		if now, _ := os.Readlink(self); now != before {
			t.Fatalf("after %d runs the main thread is in %s, was in %s", i+1, now, before)
		}
	}
}

// testMasq is a shared masquerade on a chain, subnet, lock and list of
// its own, so that the default network's pods on this host are not
// disturbed, and a lease directory for it. It is removed at the end.
func testMasq(t *testing.T) (*sharedMasq, string) {
	t.Helper()
	m := defaultMasq()
	if m == nil {
		t.Skip("no iptables")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for iptables")
	}
	dir := t.TempDir()
	m.subnet, m.chain, m.comment = "10.231.77.0/24", "RKT-MASQ-TEST", "rkt test: shared masquerade"
	m.lockPath, m.dirsPath = filepath.Join(dir, "masq.lock"), filepath.Join(dir, "run", "masq.dirs")
	jump := append([]string{"iptables", "-w", "-t", "nat", "-D", "POSTROUTING"}, m.jump()...)
	clean := func() {
		for exec.Command(jump[0], jump[1:]...).Run() == nil {
		}
		_ = exec.Command("iptables", "-w", "-t", "nat", "-F", m.chain).Run()
		_ = exec.Command("iptables", "-w", "-t", "nat", "-X", m.chain).Run()
	}
	clean()
	t.Cleanup(clean)
	return m, filepath.Join(dir, "ipam", "default")
}

// lease stands for host-local leasing ip in dir, or with free, giving it
// back.
func lease(t *testing.T, dir, ip string, free bool) {
	if free {
		if err := os.Remove(filepath.Join(dir, ip)); err != nil {
			t.Error(err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ip), []byte("pod\r\neth0"), 0o644); err != nil {
		t.Error(err)
	}
}

// chainExists says whether the chain exists at all, jump or not.
func chainExists(m *sharedMasq) bool {
	return exec.Command("iptables", "-w", "-t", "nat", "-n", "-L", m.chain).Run() == nil
}

// TestSharedMasqueradeMadeOnce: pods starting together that all find the
// shared masquerade missing make it once.
func TestSharedMasqueradeMadeOnce(t *testing.T) {
	m, dir := testMasq(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			lease(t, dir, fmt.Sprintf("10.231.77.%d", 2+i), false)
			errs <- m.ensure(context.Background(), dir)
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	nat := run(t, "iptables", "-w", "-t", "nat", "-S")
	if n := strings.Count(nat, "-j "+m.chain+"\n"); n != 1 {
		t.Errorf("%d jumps to %s, want 1:\n%s", n, m.chain, nat)
	}
	for _, want := range []string{"-A RKT-MASQ-TEST -d 10.231.77.0/24 -j ACCEPT", "-A RKT-MASQ-TEST -d 224.0.0.0/4 -j RETURN",
		"-A RKT-MASQ-TEST -j MASQUERADE"} {
		if strings.Count(nat, want+"\n") != 1 {
			t.Errorf("want %q once:\n%s", want, nat)
		}
	}
	if !m.present(context.Background()) {
		t.Error("present() does not see the chain it made")
	}
	if dirs, err := m.readDirs(); err != nil || len(dirs) != 1 || dirs[0] != dir {
		t.Errorf("lease directories keeping the chain: %q, %v; want [%s]", dirs, err, dir)
	}
}

// TestSharedMasqueradeLivesWithLeases: the chain stays while a lease is
// left in any directory that pods of the network use, and goes with the
// last one, and its list with it; a chain someone half removed is still
// made whole, and removed whole.
func TestSharedMasqueradeLivesWithLeases(t *testing.T) {
	m, a := testMasq(t)
	b := filepath.Join(filepath.Dir(a), "..", "ipam-b", "default")
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want bool, when string) {
		t.Helper()
		if got := m.present(ctx); got != want || chainExists(m) != want {
			t.Fatalf("%s: jump present %v, chain exists %v; want %v", when, got, chainExists(m), want)
		}
	}
	lease(t, a, "10.231.77.2", false)
	must(m.ensure(ctx, a))
	lease(t, b, "10.231.77.3", false)
	must(m.ensure(ctx, b))
	expect(true, "two pods up")
	lease(t, a, "10.231.77.2", true)
	must(m.release(ctx, a))
	expect(true, "after the gc of the pod of "+a+", while one holds a lease in "+b)
	if dirs, _ := m.readDirs(); len(dirs) != 1 || dirs[0] != b {
		t.Errorf("lease directories keeping the chain: %q, want [%s]", dirs, b)
	}
	lease(t, b, "10.231.77.3", true)
	must(m.release(ctx, b))
	expect(false, "after the gc of the last pod")
	if _, err := os.Stat(m.dirsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("list of lease directories left: %v", err)
	}
	// Twice: nothing to remove, no error.
	must(m.release(ctx, b))

	// Only the jump deleted by someone: made whole again, then removed.
	lease(t, a, "10.231.77.4", false)
	must(m.ensure(ctx, a))
	run(t, append([]string{"iptables", "-w", "-t", "nat", "-D", "POSTROUTING"}, m.jump()...)...)
	must(m.ensure(ctx, a))
	expect(true, "after the jump was deleted behind our back")
	run(t, append([]string{"iptables", "-w", "-t", "nat", "-D", "POSTROUTING"}, m.jump()...)...)
	lease(t, a, "10.231.77.4", true)
	must(m.release(ctx, a))
	expect(false, "after the gc of a pod whose jump was deleted")
}

// TestSharedMasqueradeSetupTeardownRace: pods starting (lease, then the
// chain made sure of, as Setup does) and pods collected (lease freed, then
// the chain released, as Teardown does) at the same moment always leave
// the chain there exactly when a lease is left.
func TestSharedMasqueradeSetupTeardownRace(t *testing.T) {
	m, a := testMasq(t)
	b := filepath.Join(filepath.Dir(a), "..", "ipam-b", "default")
	ctx := context.Background()
	var held []string // "dir ip"
	next := 2
	emptied := 0
	for round := 0; round < 60; round++ {
		// Each round collects up to two pods and starts up to two, all
		// at once; every third round only collects, so that the last
		// lease goes while others come often.
		var up, down []string
		nDown := min(len(held), 1+round%2)
		if round%3 == 2 {
			nDown = len(held)
		}
		down, held = held[:nDown], held[nDown:]
		if round%3 != 2 {
			for i := 0; i < 1+round%2; i++ {
				dir := a
				if (round+i)%4 == 3 {
					dir = b
				}
				up = append(up, dir+" 10.231.77."+strconv.Itoa(next))
				next = next%250 + 2
			}
		}
		start := make(chan struct{})
		errs := make(chan error, len(up)+len(down))
		for _, p := range up {
			dir, ip, _ := strings.Cut(p, " ")
			go func() {
				<-start
				lease(t, dir, ip, false)
				errs <- m.ensure(ctx, dir)
			}()
		}
		for _, p := range down {
			dir, ip, _ := strings.Cut(p, " ")
			go func() {
				<-start
				lease(t, dir, ip, true)
				errs <- m.release(ctx, dir)
			}()
		}
		close(start)
		for range len(up) + len(down) {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		held = append(held, up...)
		leased := hasLeases(a) || hasLeases(b)
		if leased != (len(held) > 0) {
			t.Fatalf("round %d: test lost track of its leases", round)
		}
		if m.present(ctx) != leased || chainExists(m) != leased {
			t.Fatalf("round %d (%d started, %d collected, %d left): jump present %v, chain exists %v, want %v",
				round, len(up), len(down), len(held), m.present(ctx), chainExists(m), leased)
		}
		if !leased {
			emptied++
		}
	}
	if emptied == 0 {
		t.Fatal("no round left the network without pods")
	}
}
