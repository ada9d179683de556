// Package lock owns advisory file locks (flock) on files and directories.
// The store uses them so that concurrent rkt processes never corrupt it, and
// the pod lifecycle uses a lock on the pod directory itself: a pod is running
// exactly while some process holds that lock.
package lock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by the Try* methods when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// FileLock is an flock held on an open file or directory.
type FileLock struct {
	path string
	fd   int
}

// Open opens path (a file, created if missing, or a directory) for locking
// without taking a lock yet. The descriptor is close-on-exec; call
// ClearCloexec to hand it to a child.
func Open(path string) (*FileLock, error) {
	fi, err := os.Stat(path)
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	switch {
	case err == nil && fi.IsDir():
		flags |= unix.O_DIRECTORY
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		flags = unix.O_RDWR | unix.O_CREAT | unix.O_CLOEXEC
	default:
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fd, err := unix.Open(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &FileLock{path: path, fd: fd}, nil
}

// FromFd wraps an already open descriptor, such as the one stage0 passes to
// stage1 in RKT_LOCK_FD.
func FromFd(path string, fd int) *FileLock { return &FileLock{path: path, fd: fd} }

func (l *FileLock) flock(how int, what string) error {
	for {
		err := unix.Flock(l.fd, how)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EWOULDBLOCK {
			return ErrLocked
		}
		if err != nil {
			return fmt.Errorf("%s lock %s: %w", what, l.path, err)
		}
		return nil
	}
}

// Exclusive blocks until the exclusive lock is held.
func (l *FileLock) Exclusive() error { return l.flock(unix.LOCK_EX, "exclusive") }

// TryExclusive takes the exclusive lock or returns ErrLocked at once.
func (l *FileLock) TryExclusive() error { return l.flock(unix.LOCK_EX|unix.LOCK_NB, "exclusive") }

// Shared blocks until a shared lock is held.
func (l *FileLock) Shared() error { return l.flock(unix.LOCK_SH, "shared") }

// TryShared takes a shared lock or returns ErrLocked at once.
func (l *FileLock) TryShared() error { return l.flock(unix.LOCK_SH|unix.LOCK_NB, "shared") }

// Unlock releases the lock but keeps the descriptor open.
func (l *FileLock) Unlock() error { return l.flock(unix.LOCK_UN, "release") }

// Fd returns the descriptor holding the lock.
func (l *FileLock) Fd() int { return l.fd }

// Path returns the locked path.
func (l *FileLock) Path() string { return l.path }

// ClearCloexec lets the descriptor (and so the lock) survive an exec.
func (l *FileLock) ClearCloexec() error {
	_, err := unix.FcntlInt(uintptr(l.fd), unix.F_SETFD, 0)
	return err
}

// Close releases the lock and closes the descriptor.
func (l *FileLock) Close() error { return unix.Close(l.fd) }
