package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The child of TestMain installs the profile in childProfileEnv, for an
// app with the capabilities listed in childCapsEnv.
const (
	childProfileEnv = "SECCOMP_TEST_PROFILE"
	childCapsEnv    = "SECCOMP_TEST_CAPS"
)

// profiled runs busybox ARGS under a profile and returns output and
// status (128+signal for a signal death).
func profiled(t *testing.T, profile string, caps []string, args ...string) (string, int) {
	t.Helper()
	return runFiltered(t, []string{childProfileEnv + "=" + profile, childCapsEnv + "=" + strings.Join(caps, " ")}, args...)
}

func TestProfileArgumentConditions(t *testing.T) {
	// Setuid bits (mode & 04000) are refused with EROFS, a mode of
	// exactly 0700 with EACCES; every other chmod goes through.
	profile := `{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [
			{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
			 "args": [{"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
			{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
			 "args": [{"index": 1, "value": 448, "op": "SCMP_CMP_EQ"}]},
			{"names": ["no_such_syscall_here"], "action": "SCMP_ACT_KILL"}
		]}`
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mode := func() os.FileMode {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode()
	}
	if out, code := profiled(t, profile, nil, "chmod", "4755", f); code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("chmod 4755 under the profile: %d %q", code, out)
	}
	if mode()&os.ModeSetuid != 0 {
		t.Fatal("setuid bit was set")
	}
	if out, code := profiled(t, profile, nil, "chmod", "700", f); code == 0 || !strings.Contains(out, "Permission denied") {
		t.Fatalf("chmod 700 under the profile: %d %q", code, out)
	}
	if out, code := profiled(t, profile, nil, "chmod", "750", f); code != 0 {
		t.Fatalf("chmod 750 under the profile: %d %q", code, out)
	}
	if m := mode().Perm(); m != 0o750 {
		t.Fatalf("mode %o after chmod 750", m)
	}
}

func TestProfileDefaultDeny(t *testing.T) {
	// An allow list in Docker's shape, without mkdir: what is not listed
	// fails with the profile's default errno (ENOSYS).
	var names []string
	for _, n := range allBut(t, "mkdir", "mkdirat") {
		names = append(names, fmt.Sprintf("%q", n))
	}
	profile := `{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
		"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
		"syscalls": [{"names": [` + strings.Join(names, ",") + `], "action": "SCMP_ACT_ALLOW"}]}`
	if out, code := profiled(t, profile, nil, "echo", "hello"); code != 0 || out != "hello\n" {
		t.Fatalf("echo under the profile: %d %q", code, out)
	}
	dir := filepath.Join(t.TempDir(), "d")
	if out, code := profiled(t, profile, nil, "mkdir", dir); code == 0 || !strings.Contains(out, "Function not implemented") {
		t.Fatalf("mkdir under the profile: %d %q", code, out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("directory was created")
	}
}

func TestProfileIncludesAndExcludes(t *testing.T) {
	// Docker's conditions: uname kills an app without CAP_SYS_ADMIN and
	// is allowed to one with it.
	profile := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["no-such-arch"]}},
		{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "999.0"}}
	]}`
	if out, code := profiled(t, profile, nil, "uname", "-s"); code != 128+int(syscall.SIGSYS) {
		t.Fatalf("uname without CAP_SYS_ADMIN: want death by SIGSYS, got %d %q", code, out)
	}
	if out, code := profiled(t, profile, []string{"CAP_SYS_ADMIN"}, "uname", "-s"); code != 0 || out != "Linux\n" {
		t.Fatalf("uname with CAP_SYS_ADMIN: %d %q", code, out)
	}
}

func TestParseProfileRefusals(t *testing.T) {
	for _, c := range []struct{ profile, want string }{
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}`, `unknown field "syscals"`},
		{`{"syscalls": []}`, "no defaultAction"},
		{`{"defaultAction": "SCMP_ACT_ALOW"}`, `unknown action "SCMP_ACT_ALOW"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}`, "user-space notifiers"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}`, "syscalls[0]: SCMP_ACT_NOTIFY"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_KILL"}]}`, "syscalls[0]: no names"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "argument index 6"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}`, `unknown operator "SCMP_CMP_ABOUT"`},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}`, "unknown flag"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}`, "out of range"},
		{`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "includes": {"minKernel": "five"}}]}`, "minKernel"},
		{`{"defaultAction": "SCMP_ACT_ALLOW"} {}`, "data after the profile"},
	} {
		_, err := ParseProfile([]byte(c.profile))
		if !errors.Is(err, ErrBadProfile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.profile, err, c.want)
		}
	}
}

// runBPF interprets the classic BPF a filter compiles to, over the
// struct seccomp_data of one call (the instructions compile emits).
func runBPF(t *testing.T, prog []unix.SockFilter, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	data := make([]byte, offArgs+6*8)
	binary.LittleEndian.PutUint32(data[offNr:], nr)
	binary.LittleEndian.PutUint32(data[offArch:], auditArch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArgs+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = binary.LittleEndian.Uint32(data[ins.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= ins.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(ins.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			var ok bool
			switch ins.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				ok = acc == ins.K
			case unix.BPF_JGT:
				ok = acc > ins.K
			case unix.BPF_JGE:
				ok = acc >= ins.K
			}
			if ok {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return ins.K
		default:
			t.Fatalf("instruction %d: unexpected code %#x", pc, ins.Code)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

func TestProfileComparisons(t *testing.T) {
	// Each operator against Go's own 64-bit comparison, with values whose
	// halves are equal, smaller and greater in every combination.
	ops := map[string]func(arg, a, b uint64) bool{
		"SCMP_CMP_EQ":        func(x, a, _ uint64) bool { return x == a },
		"SCMP_CMP_NE":        func(x, a, _ uint64) bool { return x != a },
		"SCMP_CMP_LT":        func(x, a, _ uint64) bool { return x < a },
		"SCMP_CMP_LE":        func(x, a, _ uint64) bool { return x <= a },
		"SCMP_CMP_GT":        func(x, a, _ uint64) bool { return x > a },
		"SCMP_CMP_GE":        func(x, a, _ uint64) bool { return x >= a },
		"SCMP_CMP_MASKED_EQ": func(x, a, b uint64) bool { return x&a == b },
	}
	halves := []uint32{0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}
	var values []uint64
	for _, hi := range halves {
		for _, lo := range halves {
			values = append(values, uint64(hi)<<32|uint64(lo))
		}
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		values = append(values, r.Uint64())
	}
	nr := syscallNumbers["chmod"]
	const denied = unix.SECCOMP_RET_ERRNO | 1
	for op, want := range ops {
		for _, a := range values {
			b := a & 0xf0f0f0f0f0f0f0f0
			p := &Profile{DefaultAction: "SCMP_ACT_ALLOW", Syscalls: []ProfileRule{{
				Names: []string{"chmod"}, Action: "SCMP_ACT_ERRNO",
				Args: []ProfileArg{{Index: 2, Value: a, ValueTwo: b, Op: op}},
			}}}
			prog, _, err := p.Program(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range values {
				got := runBPF(t, prog, nr, [6]uint64{^x, 0, x}) == denied
				if got != want(x, a, b) {
					t.Fatalf("%s %#x (%#x) on %#x: filter says %v", op, a, b, x, got)
				}
			}
		}
	}
}

func TestProfileRuleOrder(t *testing.T) {
	p := &Profile{DefaultAction: "SCMP_ACT_ERRNO", Syscalls: []ProfileRule{
		// Two conditions on distinct arguments: both must hold.
		{Names: []string{"read"}, Action: "SCMP_ACT_ALLOW",
			Args: []ProfileArg{{Index: 0, Value: 3, Op: "SCMP_CMP_EQ"}, {Index: 2, Value: 10, Op: "SCMP_CMP_LE"}}},
		// The same argument twice: either may hold (runc's reading).
		{Names: []string{"write"}, Action: "SCMP_ACT_ALLOW",
			Args: []ProfileArg{{Index: 0, Value: 1, Op: "SCMP_CMP_EQ"}, {Index: 0, Value: 2, Op: "SCMP_CMP_EQ"}}},
		// An unconditional rule comes after the conditional ones of its
		// syscall, whatever the order in the profile.
		{Names: []string{"close"}, Action: "SCMP_ACT_LOG"},
		{Names: []string{"close"}, Action: "SCMP_ACT_ALLOW", Args: []ProfileArg{{Index: 0, Value: 0, Op: "SCMP_CMP_EQ"}}},
		// Two unconditional actions: the stricter one, as the kernel
		// chooses between filters, whatever their order.
		{Names: []string{"setns", "unshare"}, Action: "SCMP_ACT_ALLOW"},
		{Names: []string{"setns"}, Action: "SCMP_ACT_KILL_PROCESS"},
		{Names: []string{"unshare"}, Action: "SCMP_ACT_TRAP"},
		{Names: []string{"unshare"}, Action: "SCMP_ACT_LOG"},
	}}
	prog, _, err := p.Program(nil)
	if err != nil {
		t.Fatal(err)
	}
	deny, allow, log := uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)), uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_LOG)
	for _, c := range []struct {
		name string
		args [6]uint64
		want uint32
	}{
		{"read", [6]uint64{3, 0, 10}, allow},
		{"read", [6]uint64{3, 0, 11}, deny},
		{"read", [6]uint64{4, 0, 1}, deny},
		{"write", [6]uint64{1}, allow},
		{"write", [6]uint64{2}, allow},
		{"write", [6]uint64{3}, deny},
		{"close", [6]uint64{0}, allow},
		{"close", [6]uint64{5}, log},
		{"openat", [6]uint64{}, deny},
		{"setns", [6]uint64{}, unix.SECCOMP_RET_KILL_PROCESS},
		{"unshare", [6]uint64{}, unix.SECCOMP_RET_TRAP},
	} {
		if got := runBPF(t, prog, syscallNumbers[c.name], c.args); got != c.want {
			t.Errorf("%s%v: got %#x, want %#x", c.name, c.args, got, c.want)
		}
	}
}

// Podman's errno names stand for errnoRet numbers; a number wins.
func TestProfileErrnoNames(t *testing.T) {
	p, err := ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS", "syscalls": [
		{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "EROFS"},
		{"names": ["write"], "action": "SCMP_ACT_ERRNO", "errno": "EROFS", "errnoRet": 13},
		{"names": ["close"], "action": "SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	prog, _, err := p.Program(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"read": uint32(unix.EROFS), "write": uint32(unix.EACCES), "openat": uint32(unix.ENOSYS)} {
		if got := runBPF(t, prog, syscallNumbers[name], [6]uint64{}); got != unix.SECCOMP_RET_ERRNO|want {
			t.Errorf("%s: got %#x, want errno %d", name, got, want)
		}
	}
	if _, err := ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EWHATEVER"}`)); !errors.Is(err, ErrBadProfile) {
		t.Errorf("unknown errno name: %v", err)
	}
}
