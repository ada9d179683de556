//go:build linux && amd64

package seccomp

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_X86_64
	// x32Bit marks x32-ABI syscall numbers, which reach the same kernel
	// functions under different numbers and must not slip past the table.
	x32Bit = 0x40000000
)
