package tests

// Pod networking under the default (nspawn) stage1, end to end: real pods,
// real CNI plugins, and the host's interfaces, namespaces, iptables rules
// and IPAM leases compared before and after. Traffic only goes between the
// host and the pods' namespaces. These tests need stage1.aci; they skip
// until make builds it.

import (
	"bufio"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func netNeedStage1(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(buildDir, "images", "stage1.aci")); err != nil {
		t.Skip("the default stage1 (stage1.aci) is not built")
	}
}

// netStatus is the part of `rkt status --format=json` about networks.
type netStatus struct {
	State    string `json:"state"`
	Networks []struct {
		NetName string `json:"netName"`
		IfName  string `json:"ifName"`
		IP      string `json:"ip"`
		Mask    string `json:"mask"`
	} `json:"networks"`
}

// netPod is a pod started in the background.
type netPod struct {
	UUID string
	cmd  *exec.Cmd
	out  *strings.Builder
}

// startNetPod runs `rkt run` in the background and waits until the pod runs
// and, unless it uses the host's network, has joined its networks.
func startNetPod(t *testing.T, e *env, args ...string) (*netPod, netStatus) {
	t.Helper()
	uuidFile := filepath.Join(e.root, fmt.Sprintf("uuid-%d", time.Now().UnixNano()))
	cmd := e.Cmd(append([]string{"--insecure-options=image", "run", "--uuid-file-save=" + uuidFile}, args...)...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &netPod{cmd: cmd, out: out}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if p.UUID != "" {
			_ = e.RunCmd(e.Cmd("stop", "--force", p.UUID))
		}
		// rkt run became stage1's run entrypoint, which halts the pod on
		// SIGTERM: the way out if stop did not work.
		for _, sig := range []os.Signal{syscall.SIGTERM, os.Kill} {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Signal(sig)
			}
		}
		<-done
	})
	wantNets := true
	for _, a := range args {
		if a == "--net=host" {
			wantNets = false
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("rkt run %v ended early:\n%s", args, out)
		default:
		}
		if p.UUID == "" {
			if b, err := os.ReadFile(uuidFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				p.UUID = strings.TrimSpace(string(b))
			}
		}
		if p.UUID != "" {
			r := e.Run("status", "--format=json", p.UUID)
			var st netStatus
			if r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &st) == nil && st.State == "running" &&
				(!wantNets || len(st.Networks) > 0 && st.Networks[0].IP != "") {
				return p, st
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pod %v did not come up:\n%s", args, out)
	return nil, netStatus{}
}

// netHTTPGet fetches url, retrying while the server starts.
func netHTTPGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < 50; i++ {
		resp, err := c.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return string(b)
			}
			last = fmt.Errorf("status %d, %v", resp.StatusCode, err)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func netFreePort(t *testing.T) int {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// netBusybox runs a shell command in a busybox pod and returns its output.
func netBusybox(t *testing.T, e *env, net, script string) result {
	t.Helper()
	return e.Run("--insecure-options=image", "run", "--net="+net, testImage("busybox.aci"), "--exec=/bin/sh", "--", "-c", script)
}

func TestNetDefaultPodsReachEachOtherAndHost(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	a, st := startNetPod(t, e, "--net=default", testImage("inspect.aci"), "--", "-serve-http=:8080")
	if len(st.Networks) != 1 || st.Networks[0].NetName != "default" || st.Networks[0].IfName != "eth0" || st.Networks[0].Mask != "255.255.255.0" {
		t.Fatalf("status networks = %+v", st.Networks)
	}
	ip := st.Networks[0].IP
	if !strings.HasPrefix(ip, "172.16.28.") {
		t.Fatalf("default network address %s outside 172.16.28.0/24", ip)
	}
	if list := e.MustRun("list", "--no-legend"); !strings.Contains(list, "default:ip4="+ip) {
		t.Errorf("rkt list does not show the pod's address:\n%s", list)
	}
	// The host reaches the pod.
	if got := netHTTPGet(t, "http://"+ip+":8080/"); strings.TrimSpace(got) == "" {
		t.Fatalf("empty answer from pod %s", a.UUID)
	}
	// Another pod on default reaches it.
	r := netBusybox(t, e, "default", "wget -q -O - http://"+ip+":8080/")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) == "" {
		t.Fatalf("pod to pod: %s", r)
	}
	// A pod reaches a server on the host, at the host's end of its link.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "host says hi") }))
	}()
	port := l.Addr().(*net.TCPAddr).Port
	r = netBusybox(t, e, "default", fmt.Sprintf("wget -q -O - http://$(ip route | awk '/default/ {print $3}'):%d/", port))
	if r.Code != 0 || !strings.Contains(r.Stdout, "host says hi") {
		t.Fatalf("pod to host: %s", r)
	}
}

func TestNetDefaultRestrictedStopsAtTheHost(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	// ip route get sends nothing: it only asks the pod's routing table.
	r := netBusybox(t, e, "default-restricted", "ip -o addr show eth0; ip route; ip route get 192.0.2.1 && echo ROUTED")
	if r.Code != 0 && !strings.Contains(r.Stdout+r.Stderr, "unreachable") {
		t.Fatalf("%s", r)
	}
	if !strings.Contains(r.Stdout, "inet 172.31.") {
		t.Errorf("no default-restricted address: %s", r)
	}
	if strings.Contains(r.Stdout, "default via") || strings.Contains(r.Stdout, "ROUTED") {
		t.Errorf("default-restricted routes beyond the host: %s", r)
	}
}

func TestNetHostAndNone(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	hostLinks := netLinkNames(t, hostRun(t, "ip", "-o", "link", "show"))
	r := netBusybox(t, e, "host", "ip -o link show")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	if got := netLinkNames(t, r.Stdout); strings.Join(got, " ") != strings.Join(hostLinks, " ") {
		t.Errorf("--net=host sees %v, the host has %v", got, hostLinks)
	}
	r = netBusybox(t, e, "none", "ip -o link show; ip -o addr show lo")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	if got := netLinkNames(t, r.Stdout); len(got) != 1 || got[0] != "lo" || !strings.Contains(r.Stdout, "127.0.0.1/8") {
		t.Errorf("--net=none: want only lo, up: %s", r)
	}
}

func hostRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// netLinkNames takes the interface names from `ip -o link` output, sorted.
func netLinkNames(t *testing.T, out string) []string {
	var names []string
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		f := strings.Fields(s.Text())
		// `ip -o link` lines are "N: NAME[@PEER]: <FLAGS> ..."; address
		// lines ("N: NAME inet ...") are skipped.
		if len(f) > 1 && strings.HasSuffix(f[0], ":") && strings.HasSuffix(f[1], ":") {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func TestNetUserBridgeStaticIP(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	const bridge = "rkttestbr0"
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	writeNetConf(t, e, "10-tbr.conflist", `{"cniVersion":"1.0.0","name":"tbr","plugins":[
		{"type":"bridge","bridge":"`+bridge+`","isGateway":true,
		 "ipam":{"type":"host-local","dataDir":"`+netIPAMDir(e)+`","ranges":[[{"subnet":"10.231.7.0/24"}]]}}]}`)
	r := netBusybox(t, e, "tbr:IP=10.231.7.9", "ip -o addr show eth0")
	if r.Code != 0 || !strings.Contains(r.Stdout, "inet 10.231.7.9/24") {
		t.Fatalf("static IP on the bridge network: %s", r)
	}
}

// netIPAMDir keeps the leases of a test's own networks in its directory,
// out of the host's /var/lib/cni.
func netIPAMDir(e *env) string { return filepath.Join(e.root, "ipam") }

func writeNetConf(t *testing.T, e *env, name, content string) string {
	t.Helper()
	dir := filepath.Join(e.LocalConfig, "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNetPortForward(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	port := netFreePort(t)
	startNetPod(t, e, "--net=default", "--port=http:"+strconv.Itoa(port), testImage("inspect.aci"), "--", "-serve-http=:8080")
	if got := netHTTPGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); strings.TrimSpace(got) == "" {
		t.Fatal("empty answer through the forwarded port")
	}
}

func TestNetDNSAndHosts(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	r := e.Run("--insecure-options=image", "run", "--net=none", "--dns=10.1.2.3", "--dns-search=pods.test",
		"--dns-opt=ndots:3", "--hosts-entry=10.9.8.7=db.pods.test",
		testImage("busybox.aci"), "--exec=/bin/sh", "--", "-c", "cat /etc/resolv.conf /etc/hosts")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"nameserver 10.1.2.3", "search pods.test", "options ndots:3", "10.9.8.7"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("pod's resolv.conf/hosts lack %q:\n%s", want, r.Stdout)
		}
	}
}

func TestNetBadConfiguration(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	before := hostNetState(t)
	path := writeNetConf(t, e, "20-broken.conf", `{"cniVersion":"1.0.0","name":"broken",`)
	r := netBusybox(t, e, "default", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, path) || !netOneLine(r) {
		t.Errorf("malformed net.d file: want one line naming %s: %s", path, r)
	}
	os.Remove(path)
	r = netBusybox(t, e, "nosuchnet", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "nosuchnet") || !netOneLine(r) {
		t.Errorf("unknown network: %s", r)
	}
	writeNetConf(t, e, "10-small.conf", `{"cniVersion":"1.0.0","name":"small","type":"ptp",
		"ipam":{"type":"host-local","dataDir":"`+netIPAMDir(e)+`","subnet":"10.231.8.0/24"}}`)
	r = netBusybox(t, e, "small:IP=10.9.9.9", "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "10.9.9.9") || !netOneLine(r) {
		t.Errorf("IP outside the range: %s", r)
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = e.Run("--insecure-options=image", "run", "--net=default", "--port=http:"+strconv.Itoa(l.Addr().(*net.TCPAddr).Port),
		testImage("inspect.aci"), "--", "-exit=0")
	if r.Code == 0 || !strings.Contains(r.Stderr, "in use") || !netOneLine(r) {
		t.Errorf("host port in use: %s", r)
	}
	if running := e.MustRun("list", "--no-legend"); strings.Contains(running, "running") {
		t.Errorf("a pod is left running:\n%s", running)
	}
	ours := envPodUUIDs(t, e)
	r = e.Run("--debug", "gc", "--grace-period=0s")
	// Shown only on failure: what gc said and where the pods are now.
	t.Logf("gc: %s\nlist after gc: %s", r, e.Run("list", "--full"))
	if r.Code != 0 {
		t.Errorf("gc failed")
	}
	expectNothingLeft(t, before, hostNetState(t), ours)
}

// netOneLine says whether a failed run said why in one line.
func netOneLine(r result) bool {
	s := strings.TrimSpace(r.Stderr)
	return s != "" && !strings.Contains(s, "\n")
}

// hostNetState is what pods may change on the host and must give back:
// interfaces, pinned namespaces, iptables rules (without counters, and
// without the top-level chains portmap makes once and shares), and the
// leases of the built-in networks with the container each holds. The
// default network's masquerade chain is in, as it lives only while some
// pod holds a lease of the network; so are the leases in the other
// directories that keep it (unit tests' and the bench's), read before and
// after the rules, so that a lease taken or freed meanwhile is seen beside
// the chain it explains.
func hostNetState(t *testing.T) map[string]bool {
	t.Helper()
	st := map[string]bool{}
	for _, l := range netLinkNames(t, hostRun(t, "ip", "-o", "link", "show")) {
		st["link "+l] = true
	}
	ns, _ := os.ReadDir("/run/netns")
	for _, n := range ns {
		st["netns "+n.Name()] = true
	}
	netLeases(st)
	for _, table := range []string{"nat", "filter"} {
		s := bufio.NewScanner(strings.NewReader(hostRun(t, "iptables-save", "-t", table)))
		for s.Scan() {
			l := s.Text()
			if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "*") || l == "COMMIT" || strings.Contains(l, "CNI-HOSTPORT-") {
				continue
			}
			if strings.HasPrefix(l, ":") {
				l = strings.Fields(l)[0]
			}
			st["iptables "+table+" "+l] = true
		}
	}
	netLeases(st)
	return st
}

// netMasqDirs lists the lease directories keeping the default network's
// masquerade, as stage1/network records them.
const netMasqDirs = "/run/rkt/masq-default.dirs"

// netLeases adds the leases of the built-in networks to st, as "lease
// default/IP HOLDER" (those in other directories keeping the masquerade
// by their full path).
func netLeases(st map[string]bool) {
	dirs := map[string]string{"/var/lib/cni/networks/default": "default",
		"/var/lib/cni/networks/default-restricted": "default-restricted"}
	if b, err := os.ReadFile(netMasqDirs); err == nil {
		for _, d := range strings.Fields(string(b)) {
			if dirs[d] == "" {
				dirs[d] = d
			}
		}
	}
	for dir, label := range dirs {
		leases, _ := os.ReadDir(dir)
		for _, l := range leases {
			if l.Name() != "lock" && !strings.HasPrefix(l.Name(), "last_reserved_ip") {
				holder, _ := os.ReadFile(filepath.Join(dir, l.Name()))
				id, _, _ := strings.Cut(string(holder), "\r")
				st["lease "+label+"/"+l.Name()+" "+strings.TrimSpace(id)] = true
			}
		}
	}
}

// netMasqLine says whether a state line is the default network's
// masquerade; netDefaultLease whether it is a lease of that network.
func netMasqLine(l string) bool { return strings.Contains(l, "RKT-MASQ-DEFAULT") }

func netDefaultLease(l string) bool {
	path, _, _ := strings.Cut(strings.TrimPrefix(l, "lease "), " ")
	return strings.HasPrefix(l, "lease ") && filepath.Base(filepath.Dir(path)) == "default"
}

func netWaitNoneRunning(t *testing.T, e *env) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var pods []struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(e.MustRun("list", "--format=json")), &pods); err != nil {
			t.Fatalf("rkt list --format=json: %v", err)
		}
		running := 0
		for _, p := range pods {
			if p.State == "running" {
				running++
			}
		}
		if running == 0 {
			return
		}
	}
	t.Fatalf("pods still running 30s after rkt run returned")
}

// envPodUUIDs lists every pod of the environment, running or not.
func envPodUUIDs(t *testing.T, e *env) []string {
	t.Helper()
	var pods []struct {
		UUID string `json:"name"`
	}
	if err := json.Unmarshal([]byte(e.MustRun("list", "--format=json")), &pods); err != nil {
		t.Fatalf("rkt list --format=json: %v", err)
	}
	var ids []string
	for _, p := range pods {
		ids = append(ids, p.UUID)
	}
	return ids
}

var podIDPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// expectNothingLeft compares the host's network state before and after a
// test's pods were collected. Other engineers' pods may come and go on this
// host meanwhile: a difference naming another pod is theirs; one naming
// ours is a leak; one naming no pod (an interface, a chain) is a leak
// unless other pods changed the state meanwhile, in which case it cannot
// be told apart and is only logged.
func expectNothingLeft(t *testing.T, before, after map[string]bool, ours []string) {
	t.Helper()
	mine := map[string]bool{}
	var marks []string
	for _, id := range ours {
		mine[id] = true
		for _, n := range []string{"default", "default-restricted"} {
			sum := sha512.Sum512([]byte(n + id))
			marks = append(marks, hex.EncodeToString(sum[:])[:16])
		}
	}
	var leaks, unattributed []string
	// The default network's masquerade may only outlive gc for a lease
	// that another pod holds.
	var masq []string
	othersOnDefault := false
	for l := range after {
		if netMasqLine(l) {
			masq = append(masq, l)
		}
		if netDefaultLease(l) {
			holder := ""
			if ids := podIDPattern.FindAllString(l, -1); len(ids) > 0 {
				holder = ids[len(ids)-1]
			}
			othersOnDefault = othersOnDefault || !mine[holder]
		}
	}
	if len(masq) > 0 && !othersOnDefault {
		sort.Strings(masq)
		t.Errorf("the default network's masquerade is left with no lease of the network held:\n%s", strings.Join(masq, "\n"))
	}
	foreign := false
	for l := range after {
		if before[l] || netMasqLine(l) {
			continue
		}
		ids := podIDPattern.FindAllString(l, -1)
		ourLine := false
		for _, id := range ids {
			ourLine = ourLine || mine[id]
		}
		for _, m := range marks {
			ourLine = ourLine || strings.Contains(l, m)
		}
		switch {
		case ourLine:
			leaks = append(leaks, l)
		case len(ids) > 0:
			foreign = true
		default:
			unattributed = append(unattributed, l)
		}
	}
	for l := range before {
		// The masquerade going with the last lease is no one else's doing.
		if !after[l] && !netMasqLine(l) {
			foreign = true
		}
	}
	sort.Strings(leaks)
	sort.Strings(unattributed)
	if len(leaks) > 0 {
		t.Errorf("left on the host by this test's pods:\n%s", strings.Join(leaks, "\n"))
	}
	if len(unattributed) > 0 {
		if foreign {
			t.Logf("other pods changed the host meanwhile; not counted:\n%s", strings.Join(unattributed, "\n"))
		} else {
			t.Errorf("new on the host after gc:\n%s", strings.Join(unattributed, "\n"))
		}
	}
}

func TestNetNothingLeftAfterManyPods(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	// One pod first, so that the shared chains portmap makes once exist.
	e.MustRun("--insecure-options=image", "run", "--net=default", testImage("inspect.aci"), "--", "-exit=0")
	e.MustRun("gc", "--grace-period=0s")
	before := hostNetState(t)
	for i := 0; i < 20; i++ {
		e.MustRun("--insecure-options=image", "run", "--net=default", testImage("inspect.aci"), "--", "-exit=0")
	}
	// A pod whose lock is still held for a moment after rkt run returned
	// counts as running, and gc rightly leaves it for later.
	netWaitNoneRunning(t, e)
	ours := envPodUUIDs(t, e)
	if len(ours) != 20 {
		t.Fatalf("%d pods before gc, want 20", len(ours))
	}
	r := e.Run("--debug", "gc", "--grace-period=0s")
	// Shown only on failure: what gc said and where the pods are now.
	t.Logf("gc: %s\nlist after gc: %s", r, e.Run("list", "--full"))
	if r.Code != 0 {
		t.Errorf("gc failed")
	}
	expectNothingLeft(t, before, hostNetState(t), ours)
}

func TestNetKilledPodCleanedByGC(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	before := hostNetState(t)
	p, st := startNetPod(t, e, "--net=default", testImage("inspect.aci"), "--", "-serve-http=:8080")
	// SIGKILL the whole pod from the outside, as an OOM killer or an
	// impatient admin would: stage1 gets no chance to clean up.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if pid, err := os.ReadFile(filepath.Join(e.Dir, "pods", "run", p.UUID, "pid")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
			if proc, err := os.FindProcess(n); err == nil {
				_ = proc.Kill()
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st netStatus
		r := e.Run("status", "--format=json", p.UUID)
		if json.Unmarshal([]byte(r.Stdout), &st) == nil && st.State != "running" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Nothing cleaned up behind gc's back: the namespace is still pinned
	// and the address still leased, for gc to release.
	killed := hostNetState(t)
	if !killed["netns rkt-"+p.UUID] {
		t.Errorf("the killed pod's namespace is not pinned any more")
	}
	if ip := st.Networks[0].IP; !killed["lease default/"+ip+" "+p.UUID] {
		t.Errorf("no lease of %s for the killed pod before gc", ip)
	}
	// Its lease keeps the network's masquerade, which gc takes away with
	// it unless another pod holds one too.
	if !killed["iptables nat -A POSTROUTING -s 172.16.28.0/24 -m comment --comment \"rkt: masquerade the default network\" -j RKT-MASQ-DEFAULT"] ||
		!killed["iptables nat -A RKT-MASQ-DEFAULT -j MASQUERADE"] {
		t.Errorf("no masquerade of the default network while the killed pod holds a lease")
	}
	r := e.Run("gc", "--grace-period=0s")
	// Shown only on failure: what gc said and where the pod is now.
	t.Logf("gc: %s\nlist after gc: %s", r, e.Run("list", "--full"))
	if r.Code != 0 {
		t.Errorf("gc failed")
	}
	expectNothingLeft(t, before, hostNetState(t), []string{p.UUID})
}

// netWaitNotRunning waits until the pod has left the running state.
func netWaitNotRunning(t *testing.T, e *env, uuid string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var st netStatus
		r := e.Run("status", "--format=json", uuid)
		if json.Unmarshal([]byte(r.Stdout), &st) == nil && st.State != "running" {
			return st.State
		}
	}
	t.Fatalf("pod %s still running 30s after it was stopped", uuid)
	return ""
}

// A pod on the default network is entered by `rkt enter` and stopped by
// `rkt stop`, forced or not.
// stage1 pins the pod's network namespace from the host's mount namespace;
// once that made the pod's entrypoints invisible to stop ("stage1 /stop:
// no such file").
func TestNetStopPodOnDefault(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	before := hostNetState(t)
	e.Fetch("busybox.aci")
	for _, force := range []bool{true, false} {
		p, st := startNetPod(t, e, "--net=default", testImage("busybox.aci"), "--exec=/bin/sh", "--", "-c", "sleep 300")
		if !force {
			// enter finds the pod the same way, once its app runs (the
			// forced stop comes before, while the pod boots).
			var r result
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if r = e.Run("enter", p.UUID, "/bin/ip", "-o", "addr", "show", "eth0"); r.Code == 0 {
					break
				}
			}
			if r.Code != 0 || !strings.Contains(r.Stdout, "inet "+st.Networks[0].IP+"/") {
				t.Errorf("rkt enter: want eth0 with %s: %s", st.Networks[0].IP, r)
			}
		}
		args := []string{"stop", p.UUID}
		if force {
			args = []string{"stop", "--force", p.UUID}
		}
		if r := e.Run(args...); r.Code != 0 {
			t.Fatalf("rkt %s: %s", strings.Join(args, " "), r)
		}
		if st := netWaitNotRunning(t, e, p.UUID); st != "exited" {
			t.Errorf("rkt %s: pod is %s, want exited", strings.Join(args, " "), st)
		}
	}
	ours := envPodUUIDs(t, e)
	e.MustRun("gc", "--grace-period=0s")
	expectNothingLeft(t, before, hostNetState(t), ours)
}

// A pod that cannot join its second network undoes the first at once, not
// at gc, and says in one line which network failed and why.
func TestNetSecondNetworkFails(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	path := writeNetConf(t, e, "20-broken.conf", `{"cniVersion":"1.0.0","name":"broken","type":"ptp",
		"ipam":{"type":"host-local","dataDir":"`+netIPAMDir(e)+`","subnet":"10.231.10.0/24"}}`)
	before := hostNetState(t)
	r := e.Run("--insecure-options=image", "run", "--net=default,broken:IP=10.9.9.9", testImage("inspect.aci"), "--", "-exit=0")
	if r.Code == 0 {
		t.Fatalf("joining a network with an address outside its range succeeded: %s", r)
	}
	if !netOneLine(r) || !strings.Contains(r.Stderr, `"broken"`) || !strings.Contains(r.Stderr, path) ||
		!strings.Contains(r.Stderr, "10.9.9.9") {
		t.Errorf("want one line naming the network %q, its file and the address: %s", "broken", r)
	}
	if running := e.MustRun("list", "--no-legend"); strings.Contains(running, "running") {
		t.Errorf("a pod is left running:\n%s", running)
	}
	ours := envPodUUIDs(t, e)
	// Before gc: the default network's link, lease and the namespace are
	// gone already.
	expectNothingLeft(t, before, hostNetState(t), ours)
	e.MustRun("gc", "--grace-period=0s")
	expectNothingLeft(t, before, hostNetState(t), ours)
}
