package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// The pod's network namespace must outlive every process of the pod: CNI
// DEL of ptp and bridge finds the addresses whose masquerade rules it must
// remove by looking inside the namespace, so a namespace that vanished with
// a SIGKILLed pod would leave iptables rules behind for good. It is
// therefore pinned by a bind mount on a file under /run/netns (where `ip
// netns` looks too) in the host's mount namespace, which the pod cannot
// take with it; stage1 itself may run in a private mount namespace made by
// stage0, so the mount is also made there for systemd-nspawn to open.

// hostMountNS opens the mount namespace at path for pinning, or returns nil
// when path is empty or names the namespace this process is already in.
func hostMountNS(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open host mount namespace: %w", err)
	}
	var theirs, ours unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &theirs); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat host mount namespace %s: %w", path, err)
	}
	if err := unix.Stat("/proc/thread-self/ns/mnt", &ours); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat own mount namespace: %w", err)
	}
	if theirs.Dev == ours.Dev && theirs.Ino == ours.Ino {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// inThread runs fn on an OS thread that is thrown away afterwards, so that
// fn may change the thread's namespaces without them leaking into
// goroutines scheduled there later.
//
// The thread is never the process's main thread: the runtime cannot end
// that one, and it is the thread whose namespaces /proc/PID/ns shows. A
// stage1 whose main thread had entered the host's mount namespace to pin
// the network namespace was invisible to `rkt stop` and `rkt enter`, which
// look for the pod's mounts through /proc/PID/ns/mnt ("stage1 /stop: no
// such file").
func inThread(fn func() error) error {
	errc := make(chan error, 1)
	var run func()
	run = func() {
		// Never unlocked: the runtime ends a locked thread whose goroutine
		// exits, which is what we want after changing its namespaces.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// While this goroutine holds the main thread locked and
			// waits, the runtime cannot schedule another one on it;
			// that one does the work, and the main thread, untouched,
			// is given back.
			done := make(chan struct{})
			go func() { run(); close(done) }()
			<-done
			runtime.UnlockOSThread()
			return
		}
		errc <- fn()
	}
	go run()
	return <-errc
}

// enterMountNS moves the calling (locked) thread into the mount namespace
// mnt. A thread sharing its filesystem context with the rest of the process
// may not change mount namespace, so it gets a private copy first.
func enterMountNS(mnt *os.File) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem context: %w", err)
	}
	if err := unix.Setns(int(mnt.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter host mount namespace: %w", err)
	}
	return nil
}

// createNetns makes a new network namespace, pinned at path in the current
// mount namespace and, if hostMnt is not nil, in that one too. On failure
// nothing is left: no file, no mount.
func createNetns(path string, hostMnt *os.File) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create netns: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns: %w", err)
	}
	f.Close()
	err = inThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("new network namespace: %w", err)
		}
		const self = "/proc/thread-self/ns/net"
		if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin network namespace at %s: %w", path, err)
		}
		if err := loopbackUp(); err != nil {
			return err
		}
		if hostMnt == nil {
			return nil
		}
		if err := enterMountNS(hostMnt); err != nil {
			return err
		}
		if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin network namespace at %s in the host mount namespace: %w", path, err)
		}
		return nil
	})
	if err != nil {
		_ = removeNetns(path, hostMnt)
		return err
	}
	return nil
}

// loopbackUp brings up lo in the calling thread's network namespace. It is
// the one interface the kernel makes itself, addressed already, so this is
// a flag flip rather than a job for the loopback plugin, whose run would
// add a process start to every pod start.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	return nil
}

// isNetns says whether f is a namespace file (nsfs).
func isNetns(f *os.File) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// errNoNetns says the pod's network namespace is gone (or never was).
var errNoNetns = errors.New("network namespace not found")

// openNetns opens the namespace pinned at path, looking in the current mount
// namespace first and then in hostMnt's.
func openNetns(path string, hostMnt *os.File) (*os.File, error) {
	f, err := os.Open(path)
	if err == nil && isNetns(f) {
		return f, nil
	}
	if f != nil {
		f.Close()
	}
	if hostMnt == nil {
		return nil, errNoNetns
	}
	var found *os.File
	err = inThread(func() error {
		if err := enterMountNS(hostMnt); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return errNoNetns
		}
		if !isNetns(f) {
			f.Close()
			return errNoNetns
		}
		found = f
		return nil
	})
	return found, err
}

// unmountAll removes every mount stacked on path in the calling thread's
// mount namespace.
func unmountAll(path string) error {
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
}

// removeNetns unpins the namespace at path in both mount namespaces and
// removes the file; the kernel frees the namespace once nothing else holds
// it. Removing what is already gone is not an error.
func removeNetns(path string, hostMnt *os.File) error {
	var errs []error
	if err := unmountAll(path); err != nil {
		errs = append(errs, err)
	}
	if hostMnt != nil {
		errs = append(errs, inThread(func() error {
			if err := enterMountNS(hostMnt); err != nil {
				return err
			}
			return unmountAll(path)
		}))
	}
	// Unlinking also detaches mounts of the file in mount namespaces we
	// cannot enter (Linux >= 3.18).
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove netns: %w", err))
	}
	return errors.Join(errs...)
}
