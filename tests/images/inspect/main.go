// Command inspect runs inside a test pod and reports what the functional
// tests need to assert about the pod from the inside: identity, environment,
// mounts, capabilities, no_new_privs, seccomp, cgroup limits, files, syscalls.
// It also does what tests need an app to do: exit with a code, sleep, serve
// HTTP, echo stdin, allocate memory.
//
// Output is one `key=value` per line (or one JSON object with -json), in a
// fixed order whatever the order of the flags (writes before reads, so that
// a file can be written and read back in one run). Values holding a newline or a
// backslash are escaped as \n and \\; ParseOutput-style helpers in the tests
// undo that. A failed action prints `KEY.error=message` instead of `KEY=value`
// and makes inspect exit 1 at the end, unless -exit says otherwise.
//
// Flags (each may be combined with the others):
//
//	-print-env          every variable as env:NAME=value
//	-print-env=NAME     only NAME (repeatable); no line when it is unset
//	-print-user         uid, gid, euid, egid, groups (supplementary, sorted, comma-separated)
//	-print-pid          pid, ppid
//	-print-cwd          cwd
//	-print-hostname     hostname
//	-print-mounts       mount:TARGET=FSTYPE OPTIONS for each mount in /proc/self/mountinfo
//	-print-caps         cap.eff, cap.prm, cap.bnd, cap.inh, cap.amb (hex masks from
//	                    /proc/self/status) and cap.eff.names, cap.bnd.names
//	-print-nnp          no_new_privs (0 or 1)
//	-print-seccomp      seccomp (0 disabled, 1 strict, 2 filter)
//	-print-cgroup-memory  cgroup.version, memory.cgroup (the directory read),
//	                    memory.limit (bytes or max: the smallest limit of the
//	                    process's cgroup and its visible ancestors)
//	-print-cgroup-cpu   cgroup.version, cpu.cgroup, cpu.quota_us (or max) and
//	                    cpu.period_us of the nearest cgroup with a quota,
//	                    cpu.shares (v1) or cpu.weight (v2) of its own cgroup
//	-read-file=PATH     file:PATH=content (repeatable)
//	-write-file=PATH -content=S   write S to PATH: write:PATH=ok (repeatable, same content)
//	-check-syscall=NAME try a harmless call of NAME and print syscall:NAME=ok or
//	                    its errno name (EPERM, EINVAL, ...); NAME is one of
//	                    swapoff reboot unshare chroot mount sethostname mknod kexec_load
//	-print-msg=S        print S as-is on stdout (not key=value)
//	-print-msg-stderr=S print S as-is on stderr
//	-stdin-echo         copy stdin to stdout until EOF
//	-alloc-mb=N         allocate and touch N MiB, then print alloc.mb=N
//	-sleep=D            sleep for D (a Go duration) after printing
//	-serve-http=ADDR    serve HTTP on ADDR after printing: GET / answers the
//	                    hostname, GET /exit answers "bye" and exits; prints
//	                    http.listening=ADDR once listening
//	-http=URL[|FORM]    GET URL, or POST the urlencoded FORM to it, after
//	                    expanding $VARS of the environment in both (e.g.
//	                    $AC_METADATA_URL); prints http.N.status and
//	                    http.N.body for the Nth -http (repeatable, from 0)
//	-ignore-term        ignore SIGTERM (to test that stop falls back to SIGKILL)
//	-exit=N             exit with N at the end (default 0, or 1 after an error)
//	-json               print one JSON object instead of key=value lines
//
// With no flag at all it prints the user, cwd, hostname and environment.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// envFlag is -print-env, which may be given bare (all variables) or with a
// name; "true" is what the flag package passes for the bare form.
type envFlag struct {
	all   bool
	names []string
}

func (e *envFlag) String() string   { return strings.Join(e.names, ",") }
func (e *envFlag) IsBoolFlag() bool { return true }
func (e *envFlag) Set(v string) error {
	if v == "true" {
		e.all = true
	} else if v != "false" {
		e.names = append(e.names, v)
	}
	return nil
}

// report accumulates the output in order.
type report struct {
	keys   []string
	values map[string]string
	failed bool
}

func (r *report) add(k, v string) {
	if _, ok := r.values[k]; !ok {
		r.keys = append(r.keys, k)
	}
	r.values[k] = v
}

func (r *report) fail(k string, err error) {
	r.add(k+".error", err.Error())
	r.failed = true
}

func escape(v string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(v)
}

func (r *report) write(w io.Writer, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(r.values)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	for _, k := range r.keys {
		fmt.Fprintf(w, "%s=%s\n", k, escape(r.values[k]))
	}
}

func main() {
	var (
		env                                          envFlag
		reads, writes, syscalls, requests            multiFlag
		printUser, printPid, printCwd, printHostname bool
		printMounts, printCaps, printNNP, printSecc  bool
		printMem, printCPU, stdinEcho, ignoreTerm    bool
		asJSON                                       bool
		content, msg, msgErr, serve, notifyWhen      string
		exitCode, allocMB                            int
		sleep                                        time.Duration
	)
	flag.Var(&env, "print-env", "print every environment variable, or only `NAME`")
	flag.BoolVar(&printUser, "print-user", false, "print uid, gid, euid, egid and groups")
	flag.BoolVar(&printPid, "print-pid", false, "print pid and ppid")
	flag.BoolVar(&printCwd, "print-cwd", false, "print the working directory")
	flag.BoolVar(&printHostname, "print-hostname", false, "print the hostname")
	flag.BoolVar(&printMounts, "print-mounts", false, "print every mount")
	flag.BoolVar(&printCaps, "print-caps", false, "print the capability sets")
	flag.BoolVar(&printNNP, "print-nnp", false, "print no_new_privs")
	flag.BoolVar(&printSecc, "print-seccomp", false, "print the seccomp mode")
	flag.BoolVar(&printMem, "print-cgroup-memory", false, "print the cgroup memory limit")
	flag.BoolVar(&printCPU, "print-cgroup-cpu", false, "print the cgroup cpu quota and shares")
	flag.Var(&reads, "read-file", "print the content of `PATH`")
	flag.Var(&writes, "write-file", "write -content to `PATH`")
	flag.StringVar(&content, "content", "", "content for -write-file")
	flag.Var(&syscalls, "check-syscall", "try syscall `NAME` and print its errno")
	flag.StringVar(&msg, "print-msg", "", "print `S` on stdout")
	flag.StringVar(&msgErr, "print-msg-stderr", "", "print `S` on stderr")
	flag.BoolVar(&stdinEcho, "stdin-echo", false, "copy stdin to stdout")
	flag.IntVar(&allocMB, "alloc-mb", 0, "allocate and touch `N` MiB")
	flag.DurationVar(&sleep, "sleep", 0, "sleep for `D` after printing")
	flag.StringVar(&serve, "serve-http", "", "serve HTTP on `ADDR`, or on the socket passed by socket activation with \"activated\"")
	flag.StringVar(&notifyWhen, "notify-ready-when", "", "once file `PATH` exists, send READY=1 to $NOTIFY_SOCKET (sd_notify)")
	flag.Var(&requests, "http", "GET `URL`, or POST the form after a |")
	flag.BoolVar(&ignoreTerm, "ignore-term", false, "ignore SIGTERM")
	flag.IntVar(&exitCode, "exit", -1, "exit with `N`")
	flag.BoolVar(&asJSON, "json", false, "print JSON")
	flag.Parse()

	if flag.NFlag() == 0 {
		printUser, printCwd, printHostname, env.all = true, true, true, true
	}
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}

	r := &report{values: map[string]string{}}
	if msg != "" {
		fmt.Println(msg)
	}
	if msgErr != "" {
		fmt.Fprintln(os.Stderr, msgErr)
	}
	if printUser {
		addUser(r)
	}
	if printPid {
		r.add("pid", strconv.Itoa(os.Getpid()))
		r.add("ppid", strconv.Itoa(os.Getppid()))
	}
	if printCwd {
		if wd, err := os.Getwd(); err != nil {
			r.fail("cwd", err)
		} else {
			r.add("cwd", wd)
		}
	}
	if printHostname {
		if h, err := os.Hostname(); err != nil {
			r.fail("hostname", err)
		} else {
			r.add("hostname", h)
		}
	}
	addEnv(r, &env)
	if printMounts {
		addMounts(r)
	}
	if printCaps || printNNP || printSecc {
		addStatus(r, printCaps, printNNP, printSecc)
	}
	if printMem {
		addMemory(r)
	}
	if printCPU {
		addCPU(r)
	}
	for _, p := range writes {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.fail("write:"+p, err)
		} else {
			r.add("write:"+p, "ok")
		}
	}
	for _, p := range reads {
		if b, err := os.ReadFile(p); err != nil {
			r.fail("file:"+p, err)
		} else {
			r.add("file:"+p, string(b))
		}
	}
	for _, name := range syscalls {
		r.add("syscall:"+name, trySyscall(name))
	}
	for i, spec := range requests {
		addHTTP(r, fmt.Sprintf("http.%d", i), spec)
	}
	if allocMB > 0 {
		alloc(allocMB)
		r.add("alloc.mb", strconv.Itoa(allocMB))
	}
	r.write(os.Stdout, asJSON)

	if stdinEcho {
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintf(os.Stderr, "stdin-echo: %v\n", err)
			r.failed = true
		}
	}
	if notifyWhen != "" {
		notifyReady(notifyWhen)
	}
	if serve != "" {
		serveHTTP(serve, exitCode)
	}
	time.Sleep(sleep)
	switch {
	case exitCode >= 0:
		os.Exit(exitCode)
	case r.failed:
		os.Exit(1)
	}
}

func addUser(r *report) {
	r.add("uid", strconv.Itoa(os.Getuid()))
	r.add("gid", strconv.Itoa(os.Getgid()))
	r.add("euid", strconv.Itoa(os.Geteuid()))
	r.add("egid", strconv.Itoa(os.Getegid()))
	groups, err := os.Getgroups()
	if err != nil {
		r.fail("groups", err)
		return
	}
	sort.Ints(groups)
	s := make([]string, len(groups))
	for i, g := range groups {
		s[i] = strconv.Itoa(g)
	}
	r.add("groups", strings.Join(s, ","))
}

func addEnv(r *report, e *envFlag) {
	if e.all {
		vars := os.Environ()
		sort.Strings(vars)
		for _, kv := range vars {
			k, v, _ := strings.Cut(kv, "=")
			r.add("env:"+k, v)
		}
	}
	for _, name := range e.names {
		if v, ok := os.LookupEnv(name); ok {
			r.add("env:"+name, v)
		}
	}
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	root, target, opts, fstype, superOpts string
}

func readMountInfo() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []mountInfo
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ID PARENT MAJ:MIN ROOT TARGET OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(s.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 6 || len(b) < 3 {
			continue
		}
		ms = append(ms, mountInfo{root: unoctal(a[3]), target: unoctal(a[4]), opts: a[5], fstype: b[0], superOpts: b[2]})
	}
	return ms, s.Err()
}

// unoctal undoes the \040-style escapes of mountinfo paths.
func unoctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func addMounts(r *report) {
	ms, err := readMountInfo()
	if err != nil {
		r.fail("mounts", err)
		return
	}
	for _, m := range ms {
		r.add("mount:"+m.target, m.fstype+" "+m.opts)
	}
}

// addStatus reads the fields the kernel reports in /proc/self/status rather
// than calling capget/prctl, so that what is printed is what the kernel says.
func addStatus(r *report, caps, nnp, secc bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		r.fail("status", err)
		return
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if caps {
		for _, c := range []struct{ key, field string }{
			{"cap.eff", "CapEff"}, {"cap.prm", "CapPrm"}, {"cap.bnd", "CapBnd"},
			{"cap.inh", "CapInh"}, {"cap.amb", "CapAmb"},
		} {
			r.add(c.key, fields[c.field])
		}
		r.add("cap.eff.names", capNames(fields["CapEff"]))
		r.add("cap.bnd.names", capNames(fields["CapBnd"]))
	}
	if nnp {
		r.add("no_new_privs", fields["NoNewPrivs"])
	}
	if secc {
		r.add("seccomp", fields["Seccomp"])
		if f, ok := fields["Seccomp_filters"]; ok {
			r.add("seccomp.filters", f)
		}
	}
}

// capabilityNames is indexed by capability number (linux/capability.h).
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func capNames(hex string) string {
	mask, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return ""
	}
	var names []string
	for i := 0; i < 64; i++ {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		if i < len(capabilityNames) {
			names = append(names, capabilityNames[i])
		} else {
			names = append(names, "CAP_"+strconv.Itoa(i))
		}
	}
	return strings.Join(names, ",")
}

// cgroupDir finds the directory of this process's cgroup for a v1
// controller (or the v2 hierarchy when controller is ""), as seen through
// the cgroup mounts in this mount namespace. A pod may see only its own
// subtree mounted at the hierarchy's root, so the mount's root is cut off
// the path /proc/self/cgroup gives; the second result is the mount point,
// the highest directory worth walking up to.
func cgroupDir(controller string) (dir, top string, version int, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", 0, err
	}
	ms, err := readMountInfo()
	if err != nil {
		return "", "", 0, err
	}
	paths := map[string]string{} // controller ("" for v2) -> path
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			paths[""] = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	try := func(ctrl string, v int) (string, string, bool) {
		p, ok := paths[ctrl]
		if !ok {
			return "", "", false
		}
		fallback := ""
		for _, m := range ms {
			if v == 1 && (m.fstype != "cgroup" || !hasOpt(m.superOpts, ctrl)) {
				continue
			}
			if v == 2 && m.fstype != "cgroup2" {
				continue
			}
			if fallback == "" {
				fallback = m.target
			}
			rel := p
			if m.root != "/" {
				if rel != m.root && !strings.HasPrefix(rel, m.root+"/") {
					continue
				}
				rel = strings.TrimPrefix(rel, m.root)
			}
			d := filepath.Join(m.target, rel)
			if _, err := os.Stat(d); err == nil {
				return d, m.target, true
			}
			return m.target, m.target, true
		}
		// The hierarchy is mounted but shows a subtree this process's path
		// is not in (a container's view): its top is the best guess.
		return fallback, fallback, fallback != ""
	}
	if controller != "" {
		if d, t, ok := try(controller, 1); ok {
			return d, t, 1, nil
		}
	}
	if d, t, ok := try("", 2); ok {
		return d, t, 2, nil
	}
	return "", "", 0, errors.New("no cgroup mount found for " + controller)
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func readTrim(p string) (string, error) {
	b, err := os.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}

// unlimitedV1 is what cgroup v1 reports for "no memory limit" (a page-rounded
// LONG_MAX); anything at or above it means none.
const unlimitedV1 = 1 << 62

func addMemory(r *report) {
	dir, top, v, err := cgroupDir("memory")
	if err != nil {
		r.fail("memory.limit", err)
		return
	}
	r.add("cgroup.version", strconv.Itoa(v))
	r.add("memory.cgroup", dir)
	file := "memory.max"
	if v == 1 {
		file = "memory.limit_in_bytes"
	}
	var min uint64
	found := false
	for d := dir; ; d = filepath.Dir(d) {
		s, err := readTrim(filepath.Join(d, file))
		if err == nil && s != "max" {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil && n < unlimitedV1 && (!found || n < min) {
				min, found = n, true
			}
		}
		if d == top || d == "/" || !strings.HasPrefix(d, top) {
			break
		}
	}
	if found {
		r.add("memory.limit", strconv.FormatUint(min, 10))
	} else {
		r.add("memory.limit", "max")
	}
}

func addCPU(r *report) {
	dir, top, v, err := cgroupDir("cpu")
	if err != nil {
		r.fail("cpu.quota_us", err)
		return
	}
	r.add("cgroup.version", strconv.Itoa(v))
	r.add("cpu.cgroup", dir)
	quota, period := "max", ""
	for d := dir; ; d = filepath.Dir(d) {
		if v == 1 {
			q, err1 := readTrim(filepath.Join(d, "cpu.cfs_quota_us"))
			p, err2 := readTrim(filepath.Join(d, "cpu.cfs_period_us"))
			if err1 == nil && err2 == nil && q != "-1" {
				quota, period = q, p
				break
			}
		} else if s, err := readTrim(filepath.Join(d, "cpu.max")); err == nil {
			if f := strings.Fields(s); len(f) == 2 && f[0] != "max" {
				quota, period = f[0], f[1]
				break
			}
		}
		if d == top || d == "/" || !strings.HasPrefix(d, top) {
			break
		}
	}
	r.add("cpu.quota_us", quota)
	if period != "" {
		r.add("cpu.period_us", period)
	}
	if v == 1 {
		if s, err := readTrim(filepath.Join(dir, "cpu.shares")); err == nil {
			r.add("cpu.shares", s)
		}
	} else if s, err := readTrim(filepath.Join(dir, "cpu.weight")); err == nil {
		r.add("cpu.weight", s)
	}
}

// trySyscall makes a call that changes nothing whether or not it is
// allowed: each is either refused by the capability check before it acts
// or given arguments that fail right after that check.
func trySyscall(name string) string {
	var err error
	switch name {
	case "swapoff":
		// The capability check comes before the path lookup.
		p, _ := unix.BytePtrFromString("/nonexistent-inspect-swap")
		_, _, e := unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(p)), 0, 0)
		err = errnoErr(e)
	case "reboot":
		// CAP_SYS_BOOT is checked before the magic numbers, which are wrong.
		_, _, e := unix.Syscall6(unix.SYS_REBOOT, 0, 0, 0, 0, 0, 0)
		err = errnoErr(e)
	case "unshare":
		// The new UTS namespace belongs to a thread that is never reused.
		runtime.LockOSThread()
		err = unix.Unshare(unix.CLONE_NEWUTS)
	case "chroot":
		err = unix.Chroot("/")
	case "mount":
		err = unix.Mount("none", "/nonexistent-inspect-mount", "tmpfs", 0, "")
	case "sethostname":
		h, _ := os.Hostname()
		err = unix.Sethostname([]byte(h))
	case "mknod":
		p := filepath.Join(os.TempDir(), fmt.Sprintf("inspect-mknod-%d", os.Getpid()))
		err = unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))
		if err == nil {
			os.Remove(p)
		}
	case "kexec_load":
		// Too many segments: EINVAL once CAP_SYS_BOOT was granted.
		_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 1<<20, 0, 0, 0, 0)
		err = errnoErr(e)
	default:
		return "unknown"
	}
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return "errno" + strconv.Itoa(int(errno))
	}
	return err.Error()
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// alloc allocates n MiB and writes every page so that it is really charged
// to the cgroup.
func alloc(n int) {
	var keep [][]byte
	for i := 0; i < n; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	runtime.KeepAlive(keep)
}

func serveHTTP(addr string, exitCode int) {
	var ln net.Listener
	var err error
	if addr == "activated" {
		ln, err = activatedListener()
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "serve-http: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("http.listening=%s\n", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprintln(w, h)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "bye")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			if exitCode < 0 {
				exitCode = 0
			}
			os.Exit(exitCode)
		}()
	})
	err = http.Serve(ln, mux)
	fmt.Fprintf(os.Stderr, "serve-http: %v\n", err)
	os.Exit(1)
}

// addHTTP makes one -http request. A refusal by the server is a result,
// not a failure: only a request that got no answer fails.
func addHTTP(r *report, key, spec string) {
	target, form, post := strings.Cut(os.ExpandEnv(spec), "|")
	c := &http.Client{Timeout: 10 * time.Second}
	var resp *http.Response
	var err error
	if post {
		resp, err = c.Post(target, "application/x-www-form-urlencoded", strings.NewReader(form))
	} else {
		resp, err = c.Get(target)
	}
	if err != nil {
		r.fail(key, err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		r.fail(key, err)
		return
	}
	r.add(key+".status", strconv.Itoa(resp.StatusCode))
	r.add(key+".body", string(body))
}

// notifyReady waits for file path, then tells the service manager the app
// is ready, as sd_notify(3) does, and says on stdout whether it could.
func notifyReady(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		fmt.Println("notify=no NOTIFY_SOCKET")
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err == nil {
		_, err = c.Write([]byte("READY=1"))
		c.Close()
	}
	if err != nil {
		fmt.Printf("notify=%v\n", err)
		return
	}
	fmt.Println("notify=READY=1")
}

// activatedListener is the first socket passed by socket activation
// (sd_listen_fds(3): LISTEN_PID is this process, LISTEN_FDS counts fds
// from 3).
func activatedListener() (net.Listener, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Errorf("no sockets passed: LISTEN_PID=%q, pid %d", os.Getenv("LISTEN_PID"), os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("no sockets passed: LISTEN_FDS=%q", os.Getenv("LISTEN_FDS"))
	}
	fmt.Printf("listen.fds=%d\n", n)
	return net.FileListener(os.NewFile(3, "activated"))
}
