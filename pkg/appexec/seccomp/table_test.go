package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The generated table agrees with golang.org/x/sys/unix as go.mod pins it
// (regenerate with go generate if this fails after an upgrade).
func TestTableMatchesXSys(t *testing.T) {
	for name, want := range map[string]uintptr{
		"read": unix.SYS_READ, "write": unix.SYS_WRITE, "execve": unix.SYS_EXECVE, "mount": unix.SYS_MOUNT,
		"umount2": unix.SYS_UMOUNT2, "unshare": unix.SYS_UNSHARE, "setns": unix.SYS_SETNS, "seccomp": unix.SYS_SECCOMP,
		"openat": unix.SYS_OPENAT, "clone3": unix.SYS_CLONE3, "kexec_load": unix.SYS_KEXEC_LOAD, "bpf": unix.SYS_BPF,
	} {
		got, ok := syscallNumbers[name]
		if !ok || uintptr(got) != want {
			t.Errorf("%s: table %d (%v), x/sys %d", name, got, ok, want)
		}
	}
	if len(syscallNumbers) < 290 {
		t.Errorf("only %d syscalls in the table", len(syscallNumbers))
	}
}
