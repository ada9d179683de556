// Package caps owns Linux capability names and the per-thread calls that
// put a thread's capability sets (bounding, permitted, effective,
// inheritable, ambient) into an app's final state before it execs.
package caps

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnknownCapability is returned for a name that is not a Linux
// capability (names are written "CAP_NET_ADMIN"; "net_admin" is accepted).
var ErrUnknownCapability = errors.New("unknown capability")

// Cap is a capability number, as in <linux/capability.h>.
type Cap int

var names = map[string]Cap{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// Default is the set an app keeps when its manifest has no capability
// isolator: the appc executor spec's default, which rkt also used.
var defaultSet = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
	"CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETFCAP", "CAP_SYS_CHROOT",
}

// Default returns a copy of the default capability set, by name.
func Default() []string { return append([]string(nil), defaultSet...) }

// Parse returns the capability called name ("CAP_NET_ADMIN", or
// case-insensitively without the prefix).
func Parse(name string) (Cap, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	c, ok := names[n]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownCapability, name)
	}
	return c, nil
}

// Name returns the canonical name of c, or "cap_N" for a capability this
// table does not know (a newer kernel's).
func (c Cap) Name() string {
	for n, v := range names {
		if v == c {
			return n
		}
	}
	return fmt.Sprintf("cap_%d", int(c))
}

// Set is a capability bit set.
type Set uint64

// ParseSet turns names into a Set; the first unknown name is an error.
func ParseSet(list []string) (Set, error) {
	var s Set
	for _, n := range list {
		c, err := Parse(n)
		if err != nil {
			return 0, err
		}
		s |= 1 << uint(c)
	}
	return s, nil
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return c >= 0 && c < 64 && s&(1<<uint(c)) != 0 }

// Names lists the capabilities of s, sorted by name.
func (s Set) Names() []string {
	var out []string
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c.Name())
		}
	}
	sort.Strings(out)
	return out
}

// LastCap is the highest capability the running kernel knows, probed with
// PR_CAPBSET_READ so that it works after a chroot without /proc.
func LastCap() Cap {
	c := Cap(0)
	for c < 63 {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c+1), 0, 0, 0); err != nil {
			break
		}
		c++
	}
	return c
}

// State is a thread's capability sets.
type State struct {
	Effective, Permitted, Inheritable Set
}

// Get reads the calling thread's effective, permitted and inheritable sets.
func Get() (State, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return State{}, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) Set { return Set(lo) | Set(hi)<<32 }
	return State{
		Effective:   join(data[0].Effective, data[1].Effective),
		Permitted:   join(data[0].Permitted, data[1].Permitted),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}, nil
}

// Set writes the calling thread's effective, permitted and inheritable
// sets. Capabilities are per thread: the caller must hold
// runtime.LockOSThread and exec from this thread.
func (st State) Set() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0] = unix.CapUserData{Effective: uint32(st.Effective), Permitted: uint32(st.Permitted), Inheritable: uint32(st.Inheritable)}
	data[1] = unix.CapUserData{Effective: uint32(st.Effective >> 32), Permitted: uint32(st.Permitted >> 32), Inheritable: uint32(st.Inheritable >> 32)}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// Bounding reads the calling thread's bounding set.
func Bounding() Set {
	var s Set
	for c := Cap(0); c <= LastCap(); c++ {
		if r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && r == 1 {
			s |= 1 << uint(c)
		}
	}
	return s
}

// LimitBounding drops every capability not in keep from the calling
// thread's bounding set (needs CAP_SETPCAP). Nothing dropped can come back
// through execve, setuid binaries or file capabilities.
func LimitBounding(keep Set) error {
	last := LastCap()
	for c := Cap(0); c <= last; c++ {
		if keep.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", c.Name(), err)
		}
	}
	return nil
}

// RaiseAmbient clears the ambient set, then raises each capability of s
// (each must already be permitted and inheritable). Ambient capabilities
// survive the execve of a non-root program, the only way a non-root app
// keeps a capability.
func RaiseAmbient(s Set) error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for c := Cap(0); c < 64; c++ {
		if !s.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", c.Name(), err)
		}
	}
	return nil
}
