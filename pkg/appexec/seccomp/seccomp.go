// Package seccomp owns app syscall filters: the appc retain-set/remove-set
// model with an optional errno, the named groups (@appc.io/all,
// @rkt/default-blacklist, ...), and the classic BPF program that enforces
// a filter, built here without cgo or libseccomp from syscall tables
// generated out of golang.org/x/sys/unix (see internal/mksyscalls).
package seccomp

//go:generate sh -c "go run ./internal/mksyscalls $(go env GOMODCACHE)/golang.org/x/sys@$(go list -m -f '{{.Version}}' golang.org/x/sys)/unix amd64 arm64"

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sentinel errors, wrapped with the offending name.
var (
	ErrUnknownSyscall = errors.New("unknown syscall")
	ErrUnknownGroup   = errors.New("unknown syscall group")
	ErrUnknownErrno   = errors.New("unknown errno")
	ErrBadMode        = errors.New("seccomp mode must be retain or remove")
	// ErrUnsupportedArch: no syscall table for this CPU architecture.
	ErrUnsupportedArch = errors.New("seccomp filters are not supported on this architecture")
)

// Mode says whether Syscalls are the only ones allowed or the ones denied.
type Mode string

// The two appc modes.
const (
	Retain Mode = "retain" // os/linux/seccomp-retain-set: allow only these
	Remove Mode = "remove" // os/linux/seccomp-remove-set: deny these
)

// Filter is one app's syscall filter, as the seccomp isolators say it.
type Filter struct {
	Mode Mode `json:"mode"`
	// Syscalls are names ("mount") and groups ("@rkt/default-blacklist").
	Syscalls []string `json:"syscalls"`
	// Errno is what a denied syscall returns ("EPERM"); empty means the
	// process is killed (SIGSYS), as appc specifies.
	Errno string `json:"errno,omitempty"`
}

// Group names every filter understands. The appc ones are the spec's; the
// rkt and docker names follow rkt's documentation, with our own lists.
const (
	GroupAll                  = "@appc.io/all"
	GroupEmpty                = "@appc.io/empty"
	GroupRktDefaultBlacklist  = "@rkt/default-blacklist"
	GroupRktDefaultWhitelist  = "@rkt/default-whitelist"
	GroupDockerDefaultBlack   = "@docker/default-blacklist"
	GroupDockerDefaultWhite   = "@docker/default-whitelist"
	GroupSystemdMount         = "@systemd/mount"
	GroupSystemdClock         = "@systemd/clock"
	GroupSystemdModule        = "@systemd/module"
	GroupSystemdRawIO         = "@systemd/raw-io"
	GroupSystemdReboot        = "@systemd/reboot"
	GroupSystemdSwap          = "@systemd/swap"
	GroupSystemdObsolete      = "@systemd/obsolete"
	GroupSystemdDebug         = "@systemd/debug"
	GroupSystemdCPUEmulation  = "@systemd/cpu-emulation"
	GroupSystemdKeyring       = "@systemd/keyring"
	GroupSystemdPrivilegedNS  = "@systemd/namespaces"
	defaultErrnoForDefaultSet = "EPERM"
)

// Kernel interfaces that no app of a pod needs and that reach outside the
// pod (mounts, modules, clock, swap, reboot, kexec, keyrings, raw I/O,
// namespaces, tracing other processes, obsolete calls). Names absent from
// the running architecture's table are skipped.
var groups = map[string][]string{
	GroupSystemdMount: {"mount", "umount", "umount2", "pivot_root", "move_mount", "fsopen",
		"fsconfig", "fsmount", "fspick", "open_tree", "mount_setattr"},
	GroupSystemdClock:  {"adjtimex", "clock_adjtime", "clock_settime", "settimeofday", "stime"},
	GroupSystemdModule: {"init_module", "finit_module", "delete_module", "create_module"},
	GroupSystemdRawIO:  {"ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"},
	GroupSystemdReboot: {"reboot", "kexec_load", "kexec_file_load"},
	GroupSystemdSwap:   {"swapon", "swapoff"},
	GroupSystemdObsolete: {"_sysctl", "afs_syscall", "break", "create_module", "ftime", "get_kernel_syms",
		"getpmsg", "gtty", "lock", "mpx", "nfsservctl", "prof", "profil", "putpmsg",
		"query_module", "security", "sgetmask", "ssetmask", "stty", "sysfs", "tuxcall",
		"ulimit", "uselib", "ustat", "vserver", "lookup_dcookie", "vhangup"},
	GroupSystemdDebug:        {"ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "kcmp", "bpf", "userfaultfd"},
	GroupSystemdCPUEmulation: {"modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old"},
	GroupSystemdKeyring:      {"add_key", "keyctl", "request_key"},
	GroupSystemdPrivilegedNS: {"setns", "unshare"},
}

func init() {
	var black []string
	for _, g := range []string{GroupSystemdMount, GroupSystemdClock, GroupSystemdModule,
		GroupSystemdRawIO, GroupSystemdReboot, GroupSystemdSwap, GroupSystemdObsolete,
		GroupSystemdDebug, GroupSystemdCPUEmulation, GroupSystemdKeyring, GroupSystemdPrivilegedNS} {
		black = append(black, groups[g]...)
	}
	black = append(black, "acct", "quotactl", "quotactl_fd", "open_by_handle_at",
		"name_to_handle_at", "syslog", "personality", "fanotify_init", "nfsservctl")
	groups[GroupRktDefaultBlacklist] = black
	groups[GroupDockerDefaultBlack] = black
}

// Default is the filter of an app whose manifest has no seccomp isolator:
// the default blacklist, denied with EPERM so that a program probing an
// optional feature (a mount, a keyring) fails gracefully instead of dying.
func Default() *Filter {
	return &Filter{Mode: Remove, Syscalls: []string{GroupRktDefaultBlacklist}, Errno: defaultErrnoForDefaultSet}
}

// Groups lists the group names a filter may use.
func Groups() []string {
	names := []string{GroupAll, GroupEmpty, GroupRktDefaultWhitelist, GroupDockerDefaultWhite}
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}

// Known reports whether name is a syscall of this architecture.
func Known(name string) bool {
	_, ok := syscallNumbers[name]
	return ok
}

// expandGroup returns the syscall numbers of a group on this architecture.
func expandGroup(g string) (map[uint32]bool, error) {
	out := map[uint32]bool{}
	switch g {
	case GroupEmpty:
	case GroupAll:
		for _, n := range syscallNumbers {
			out[n] = true
		}
	case GroupRktDefaultWhitelist, GroupDockerDefaultWhite:
		// Everything this architecture has, minus the blacklist: a
		// retain set that also denies syscalls newer than this table.
		black, _ := expandGroup(GroupRktDefaultBlacklist)
		for _, n := range syscallNumbers {
			if !black[n] {
				out[n] = true
			}
		}
	default:
		list, ok := groups[g]
		if !ok {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownGroup, g, strings.Join(Groups(), ", "))
		}
		for _, name := range list {
			if n, ok := syscallNumbers[name]; ok {
				out[n] = true
			}
		}
	}
	return out, nil
}

// numbers resolves names and groups to the syscall numbers they cover.
func numbers(names []string) (map[uint32]bool, error) {
	if len(syscallNumbers) == 0 {
		return nil, fmt.Errorf("%w (%s)", ErrUnsupportedArch, runtime.GOARCH)
	}
	out := map[uint32]bool{}
	for _, raw := range names {
		name := strings.TrimSpace(raw)
		if strings.HasPrefix(name, "@") {
			g, err := expandGroup(name)
			if err != nil {
				return nil, err
			}
			for n := range g {
				out[n] = true
			}
			continue
		}
		n, ok := syscallNumbers[name]
		if !ok {
			return nil, fmt.Errorf("%w %q on %s", ErrUnknownSyscall, name, runtime.GOARCH)
		}
		out[n] = true
	}
	return out, nil
}

// ParseErrno turns "EPERM" (or "eperm") into its number.
func ParseErrno(name string) (syscall.Errno, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == n {
			return e, nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownErrno, name)
}

// Validate checks the mode, every name and the errno.
func (f *Filter) Validate() error {
	if f.Mode != Retain && f.Mode != Remove {
		return fmt.Errorf("%w, not %q", ErrBadMode, f.Mode)
	}
	if f.Errno != "" {
		if _, err := ParseErrno(f.Errno); err != nil {
			return err
		}
	}
	_, err := numbers(f.Syscalls)
	return err
}

// Allows reports whether the filter lets the named syscall through.
func (f *Filter) Allows(name string) (bool, error) {
	set, err := numbers(f.Syscalls)
	if err != nil {
		return false, err
	}
	n, ok := syscallNumbers[name]
	if !ok {
		return false, fmt.Errorf("%w %q", ErrUnknownSyscall, name)
	}
	return set[n] == (f.Mode == Retain), nil
}

// Program compiles the filter to classic BPF for this architecture (see
// compile). In retain mode execve is always allowed, since the app itself
// is started through it after the filter is in place.
func (f *Filter) Program() ([]unix.SockFilter, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	set, _ := numbers(f.Syscalls)
	deny := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	if f.Errno != "" {
		e, _ := ParseErrno(f.Errno)
		deny = unix.SECCOMP_RET_ERRNO | (uint32(e) & unix.SECCOMP_RET_DATA)
	}
	match, other := deny, uint32(unix.SECCOMP_RET_ALLOW)
	if f.Mode == Retain {
		match, other = other, match
		set[syscallNumbers["execve"]] = true
	}
	rules := make(map[uint32][]rule, len(set))
	for n := range set {
		rules[n] = []rule{{action: match}}
	}
	return compile(other, rules)
}

// Install loads the filter on the calling thread, and on the threads it
// later creates; it cannot be removed. The caller must hold
// runtime.LockOSThread and exec from the same thread. Unless
// no_new_privs is set, the thread needs CAP_SYS_ADMIN.
func (f *Filter) Install() error {
	c, err := f.Compile()
	if err != nil {
		return err
	}
	return c.Install()
}

// Compile compiles the filter (see Program) for a later Install.
func (f *Filter) Compile() (*Compiled, error) {
	prog, err := f.Program()
	if err != nil {
		return nil, err
	}
	return &Compiled{prog: prog}, nil
}

// Compiled is a filter or profile compiled for this architecture: what
// a launcher prepares before it gives up privileges, and installs last.
type Compiled struct {
	prog  []unix.SockFilter
	flags uintptr // seccomp(2) flags
}

// Install loads the program on the calling thread, as Filter.Install.
func (c *Compiled) Install() error {
	fprog := unix.SockFprog{Len: uint16(len(c.prog)), Filter: &c.prog[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, c.flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(c.prog)
	if errno != 0 {
		return fmt.Errorf("install seccomp filter: %w", errno)
	}
	return nil
}
