package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrBadProfile: a seccomp profile that does not parse, or asks for
// something this runtime cannot do (a user-space notifier).
var ErrBadProfile = errors.New("invalid seccomp profile")

// Profile is a syscall policy in the seccomp format of the OCI runtime
// specification, which Kubernetes' Localhost profiles, Podman's and
// Docker's `seccomp=FILE` use; Docker's and Podman's own additions
// (includes and excludes by capability, architecture and kernel, archMap,
// errno names) are read too, so their default profiles work as written.
//
// Syscall names this architecture does not have are skipped, as runc and
// libseccomp skip them: profiles list the calls of many. Calls made with
// another ABI (32-bit calls on x86-64, x32) kill the process whatever
// the profile's architectures say, as every filter here does.
//
// The filter goes in before the launcher's last steps, so a profile that
// denies by default must allow capset, prctl, chdir and execve.
type Profile struct {
	DefaultAction   string `json:"defaultAction"`
	DefaultErrnoRet *uint  `json:"defaultErrnoRet,omitempty"`
	// DefaultErrno is Podman's name for it ("ENOSYS"); a number wins.
	DefaultErrno string `json:"defaultErrno,omitempty"`
	// Architectures and ArchMap (Docker's) only say which ABIs the
	// policy is meant for: see above.
	Architectures []string          `json:"architectures,omitempty"`
	ArchMap       []json.RawMessage `json:"archMap,omitempty"`
	Flags         []string          `json:"flags,omitempty"`
	// ListenerPath (a user-space notifier, SCMP_ACT_NOTIFY) is refused.
	ListenerPath     string        `json:"listenerPath,omitempty"`
	ListenerMetadata string        `json:"listenerMetadata,omitempty"`
	Syscalls         []ProfileRule `json:"syscalls,omitempty"`
}

// ProfileRule gives the named syscalls an action, when every condition
// on their arguments holds. Conditions on one argument given more than
// once make one rule each, as in runc: any of them may hold.
type ProfileRule struct {
	Names    []string     `json:"names,omitempty"`
	Name     string       `json:"name,omitempty"` // Docker's older form
	Action   string       `json:"action"`
	ErrnoRet *uint        `json:"errnoRet,omitempty"`
	Errno    string       `json:"errno,omitempty"` // Podman's name for it
	Args     []ProfileArg `json:"args,omitempty"`
	Comment  string       `json:"comment,omitempty"`
	// Includes and Excludes are Docker's: the rule applies only when
	// the app has every capability of Includes.Caps and none of
	// Excludes.Caps, on the architectures and kernels named.
	Includes *ProfileFilter `json:"includes,omitempty"`
	Excludes *ProfileFilter `json:"excludes,omitempty"`
}

// ProfileArg compares argument Index with Op: SCMP_CMP_EQ, NE, LT, LE,
// GT, GE (to Value) or MASKED_EQ ((arg & Value) == ValueTwo).
type ProfileArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo,omitempty"`
	Op       string `json:"op"`
}

// ProfileFilter is Docker's condition on where a rule applies.
type ProfileFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"` // Go's names: amd64, arm64
	MinKernel string   `json:"minKernel,omitempty"`
}

var profileActions = map[string]uint32{
	"SCMP_ACT_KILL":         unix.SECCOMP_RET_KILL_THREAD,
	"SCMP_ACT_KILL_THREAD":  unix.SECCOMP_RET_KILL_THREAD,
	"SCMP_ACT_KILL_PROCESS": unix.SECCOMP_RET_KILL_PROCESS,
	"SCMP_ACT_TRAP":         unix.SECCOMP_RET_TRAP,
	"SCMP_ACT_ERRNO":        unix.SECCOMP_RET_ERRNO,
	"SCMP_ACT_TRACE":        unix.SECCOMP_RET_TRACE,
	"SCMP_ACT_ALLOW":        unix.SECCOMP_RET_ALLOW,
	"SCMP_ACT_LOG":          unix.SECCOMP_RET_LOG,
}

var profileOps = map[string]compareOp{
	"SCMP_CMP_EQ": opEq, "SCMP_CMP_NE": opNe, "SCMP_CMP_LT": opLt, "SCMP_CMP_LE": opLe,
	"SCMP_CMP_GT": opGt, "SCMP_CMP_GE": opGe, "SCMP_CMP_MASKED_EQ": opMaskedEq,
}

var profileFlags = map[string]uintptr{
	"SECCOMP_FILTER_FLAG_TSYNC":      0, // moot: the thread that installs it execs the app
	"SECCOMP_FILTER_FLAG_LOG":        unix.SECCOMP_FILTER_FLAG_LOG,
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW": unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}

// ParseProfile reads and checks a profile. Unknown fields are refused: a
// field this runtime would ignore could be a restriction it drops.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProfile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the profile", ErrBadProfile)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks actions, operators, argument indexes and flags.
func (p *Profile) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadProfile, fmt.Sprintf(format, args...))
	}
	if p.DefaultAction == "" {
		return bad("no defaultAction")
	}
	if p.DefaultErrno != "" {
		if _, err := ParseErrno(p.DefaultErrno); err != nil {
			return bad("defaultErrno: %v", err)
		}
	}
	defErrno := errnoNumber(p.DefaultErrnoRet, p.DefaultErrno)
	if _, err := profileAction(p.DefaultAction, defErrno, nil); err != nil {
		return bad("defaultAction: %v", err)
	}
	if p.ListenerPath != "" {
		return bad("listenerPath %q: user-space notifiers are not supported", p.ListenerPath)
	}
	for _, f := range p.Flags {
		if _, ok := profileFlags[f]; !ok {
			return bad("unknown flag %q", f)
		}
	}
	for _, a := range p.Architectures {
		if !strings.HasPrefix(a, "SCMP_ARCH_") {
			return bad("unknown architecture %q", a)
		}
	}
	for i, r := range p.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		if len(r.Names) == 0 && r.Name == "" {
			return bad("%s: no names", where)
		}
		if r.Errno != "" {
			if _, err := ParseErrno(r.Errno); err != nil {
				return bad("%s: %v", where, err)
			}
		}
		if _, err := profileAction(r.Action, errnoNumber(r.ErrnoRet, r.Errno), defErrno); err != nil {
			return bad("%s: %v", where, err)
		}
		for _, a := range r.Args {
			if a.Index > 5 {
				return bad("%s: argument index %d (syscalls have 6)", where, a.Index)
			}
			if _, ok := profileOps[a.Op]; !ok {
				return bad("%s: unknown operator %q", where, a.Op)
			}
		}
		for _, f := range []*ProfileFilter{r.Includes, r.Excludes} {
			if f != nil && f.MinKernel != "" {
				if _, ok := kernelVersion(f.MinKernel); !ok {
					return bad("%s: minKernel %q is not MAJOR.MINOR", where, f.MinKernel)
				}
			}
		}
	}
	return nil
}

// profileAction is the seccomp return value of an action; errnoRet (or
// the profile's default, or EPERM) goes with SCMP_ACT_ERRNO and
// SCMP_ACT_TRACE.
func profileAction(name string, errnoRet, def *uint) (uint32, error) {
	if name == "SCMP_ACT_NOTIFY" {
		return 0, errors.New("SCMP_ACT_NOTIFY: user-space notifiers are not supported")
	}
	act, ok := profileActions[name]
	if !ok {
		return 0, fmt.Errorf("unknown action %q", name)
	}
	if act != unix.SECCOMP_RET_ERRNO && act != unix.SECCOMP_RET_TRACE {
		return act, nil
	}
	data := uint(unix.EPERM)
	if act == unix.SECCOMP_RET_TRACE {
		data = 0
	}
	switch {
	case errnoRet != nil:
		data = *errnoRet
	case def != nil:
		data = *def
	}
	if data > unix.SECCOMP_RET_DATA {
		return 0, fmt.Errorf("errnoRet %d is out of range", data)
	}
	return act | uint32(data), nil
}

// errnoNumber is errnoRet, or else the number of the errno name (which
// Validate has checked), or else nil.
func errnoNumber(ret *uint, name string) *uint {
	if ret != nil || name == "" {
		return ret
	}
	e, err := ParseErrno(name)
	if err != nil {
		return nil
	}
	n := uint(e)
	return &n
}

// Program compiles the profile for an app whose capability bounding set
// is caps (Docker's includes and excludes name capabilities), and
// returns the seccomp(2) flags to install it with.
func (p *Profile) Program(caps []string) ([]unix.SockFilter, uintptr, error) {
	if err := p.Validate(); err != nil {
		return nil, 0, err
	}
	if len(syscallNumbers) == 0 {
		return nil, 0, fmt.Errorf("%w (%s)", ErrUnsupportedArch, runtime.GOARCH)
	}
	defErrno := errnoNumber(p.DefaultErrnoRet, p.DefaultErrno)
	def, _ := profileAction(p.DefaultAction, defErrno, nil)
	have := map[string]bool{}
	for _, c := range caps {
		have[strings.ToUpper(c)] = true
	}
	kernel := runningKernel()
	rules := map[uint32][]rule{}
	// The unconditional action of each syscall, kept apart: it is tried
	// after the conditional rules, which would otherwise never be reached.
	final := map[uint32]uint32{}
	for _, r := range p.Syscalls {
		if !applies(r.Includes, r.Excludes, have, kernel) {
			continue
		}
		act, _ := profileAction(r.Action, errnoNumber(r.ErrnoRet, r.Errno), defErrno)
		conds := splitConds(r.Args)
		names := r.Names
		if r.Name != "" {
			names = append([]string{r.Name}, names...)
		}
		for _, name := range names {
			n, ok := syscallNumbers[name]
			if !ok {
				continue
			}
			if len(conds) == 0 {
				if prev, ok := final[n]; !ok || stricter(act, prev) {
					final[n] = act
				}
				continue
			}
			for _, cs := range conds {
				rules[n] = append(rules[n], rule{conds: cs, action: act})
			}
		}
	}
	for n, act := range final {
		if act == def && len(rules[n]) == 0 {
			continue
		}
		rules[n] = append(rules[n], rule{action: act})
	}
	var flags uintptr
	for _, f := range p.Flags {
		flags |= profileFlags[f]
	}
	prog, err := compile(def, rules)
	return prog, flags, err
}

// Compile compiles the profile (see Program) for a later Install.
func (p *Profile) Compile(caps []string) (*Compiled, error) {
	prog, flags, err := p.Program(caps)
	if err != nil {
		return nil, err
	}
	return &Compiled{prog: prog, flags: flags}, nil
}

// Install compiles the profile and loads it on the calling thread, as
// Filter.Install does.
func (p *Profile) Install(caps []string) error {
	c, err := p.Compile(caps)
	if err != nil {
		return err
	}
	return c.Install()
}

// stricter tells whether seccomp return value a takes precedence over b,
// as the kernel decides between the answers of stacked filters (kill the
// process first, allow last); between two errnos the first stays. Profiles
// give a syscall two unconditional actions: Podman's default allows setns
// to every app, then refuses it to those without CAP_SYS_ADMIN.
func stricter(a, b uint32) bool {
	return int32(a&unix.SECCOMP_RET_ACTION_FULL) < int32(b&unix.SECCOMP_RET_ACTION_FULL)
}

// splitConds turns a rule's arguments into the condition lists of the
// rules it makes: one list, unless an argument is named twice (then one
// rule per condition).
func splitConds(args []ProfileArg) [][]cond {
	if len(args) == 0 {
		return nil
	}
	seen := map[uint]bool{}
	repeated := false
	var all []cond
	for _, a := range args {
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		all = append(all, cond{arg: a.Index, op: profileOps[a.Op], a: a.Value, b: a.ValueTwo})
	}
	if !repeated {
		return [][]cond{all}
	}
	out := make([][]cond, len(all))
	for i, c := range all {
		out[i] = []cond{c}
	}
	return out
}

// applies evaluates Docker's includes and excludes for this app.
func applies(inc, exc *ProfileFilter, caps map[string]bool, kernel [2]int) bool {
	if inc != nil {
		for _, c := range inc.Caps {
			if !caps[strings.ToUpper(c)] {
				return false
			}
		}
		if len(inc.Arches) > 0 && !contains(inc.Arches, runtime.GOARCH) {
			return false
		}
		if inc.MinKernel != "" {
			min, _ := kernelVersion(inc.MinKernel)
			if kernel[0] < min[0] || (kernel[0] == min[0] && kernel[1] < min[1]) {
				return false
			}
		}
	}
	if exc != nil {
		for _, c := range exc.Caps {
			if caps[strings.ToUpper(c)] {
				return false
			}
		}
		if contains(exc.Arches, runtime.GOARCH) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// kernelVersion reads "5.10" (or a release such as "6.1.0-18-amd64").
func kernelVersion(s string) ([2]int, bool) {
	var v [2]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	var err1, err2 error
	v[0], err1 = strconv.Atoi(parts[0])
	v[1], err2 = strconv.Atoi(minor)
	return v, err1 == nil && err2 == nil
}

func runningKernel() [2]int {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return [2]int{}
	}
	v, _ := kernelVersion(unix.ByteSliceToString(u.Release[:]))
	return v
}
