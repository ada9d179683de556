// Package pty opens pseudo-terminals: the terminal an app of the nspawn
// stage1 gets for `rkt attach`, and the ones rkt-cri runs `kubectl exec
// -t` and `attach -t` on.
package pty

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Open opens a new pseudo-terminal and returns its master and slave sides,
// both close-on-exec and neither the caller's controlling terminal.
func Open() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// The peer by fd, not by a /dev/pts path, which could name another
	// devpts instance than the one ptmx belongs to (a container's).
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno == 0 {
		return master, os.NewFile(sfd, "pts"), nil
	}
	if !errors.Is(errno, unix.EINVAL) && !errors.Is(errno, unix.ENOTTY) {
		master.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", errno)
	}
	// Kernels before 4.13.
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// SetSize sets the size of the terminal f belongs to (either side).
func SetSize(f *os.File, rows, cols uint16) error {
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}
