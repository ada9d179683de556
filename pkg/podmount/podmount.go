// Package podmount owns work done inside a running pod's mount namespace
// from outside it: mounts built detached in the caller's namespace (the
// new mount API: fsopen/fsconfig/fsmount, open_tree) and attached with
// move_mount inside the pod's, unmounts there, and commands run there.
// Nothing it does ever touches the host's mount table: the thread that
// joins the pod's namespace never leaves it and dies with its goroutine.
package podmount

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNoNamespace: the process whose mount namespace was asked for is gone.
var ErrNoNamespace = errors.New("pod mount namespace not found")

// In runs fn on an OS thread that has joined the mount namespace (and so
// the root and working directory) of process pid. fn must not start
// goroutines that expect that namespace; commands it starts (os/exec)
// inherit it, since they are forked from this thread. The thread is
// never returned to the Go scheduler.
func In(pid int, fn func() error) error { return in(pid, false, fn) }

// Run runs cmd in the mount and PID namespaces of process pid and waits
// for it: a client of the pod's systemd must be one of its processes.
func Run(pid int, cmd *exec.Cmd) error {
	return in(pid, true, cmd.Run)
}

func in(pid int, pidNS bool, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread leaves with us
		var pidfd int = -1
		if pidNS {
			fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("%w: pid %d: %v", ErrNoNamespace, pid, err)
				return
			}
			defer unix.Close(fd)
			pidfd = fd
		}
		fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("%w: pid %d: %v", ErrNoNamespace, pid, err)
			return
		}
		defer unix.Close(fd)
		// setns into a mount namespace needs a root and cwd of our own.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("join mount namespace of pid %d: %w", pid, err)
			return
		}
		// Only children forked from this thread land in the PID namespace.
		if pidfd >= 0 {
			if err := unix.Setns(pidfd, unix.CLONE_NEWPID); err != nil {
				errc <- fmt.Errorf("join PID namespace of pid %d: %w", pid, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// Overlay builds an overlay of lower, upper and work (paths in the
// caller's namespace) as a detached mount and returns its file
// descriptor: it is in no mount table until Attach moves it somewhere.
func Overlay(lower, upper, work string) (int, error) {
	return overlay(lower, upper, work)
}

// UserNS describes the user namespace of a pod's process: its file and
// where it maps root on the host.
type UserNS struct {
	// Path is /proc/PID/ns/user.
	Path string
	// RootUID and RootGID are the host's IDs of the namespace's root.
	RootUID, RootGID int
}

// OwnUserNS returns the user namespace of process pid, or nil when it is
// the caller's.
func OwnUserNS(pid int) (*UserNS, error) {
	path := fmt.Sprintf("/proc/%d/ns/user", pid)
	var a, b unix.Stat_t
	if err := unix.Stat(path, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNamespace, err)
	}
	if err := unix.Stat("/proc/self/ns/user", &b); err != nil {
		return nil, err
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		return nil, nil
	}
	ns := &UserNS{Path: path}
	for i, f := range []string{"uid_map", "gid_map"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			return nil, err
		}
		var inside, outside, count int
		if _, err := fmt.Sscan(string(data), &inside, &outside, &count); err != nil || inside != 0 {
			return nil, fmt.Errorf("%s of process %d does not map root: %q", f, pid, data)
		}
		if i == 0 {
			ns.RootUID = outside
		} else {
			ns.RootGID = outside
		}
	}
	return ns, nil
}

// OverlayInUserNS is Overlay for a pod in user namespace ns: the lower
// tree is seen through an idmapped mount of it, so that its files (the
// host's root's, in the store) are the namespace's root's in the pod, and
// upper, the root of the overlay, is made the namespace root's, so that
// what the app writes is stored as the host user it is. The store's tree
// is not changed or copied.
func OverlayInUserNS(lower, upper, work string, ns *UserNS) (int, error) {
	if err := os.Chown(upper, ns.RootUID, ns.RootGID); err != nil {
		return -1, err
	}
	usernsFd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(usernsFd)
	tree, err := unix.OpenTree(unix.AT_FDCWD, lower, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("clone %s: %w", lower, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(usernsFd)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return -1, fmt.Errorf("idmapped mount of %s: %w", lower, err)
	}
	// overlayfs takes its layers by path; the detached idmapped mount
	// has one through this process's descriptor.
	return overlay(fmt.Sprintf("/proc/self/fd/%d", tree), upper, work)
}

func overlay(lower, upper, work string) (int, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen overlay: %w (is overlayfs available? try --no-overlay)", err)
	}
	defer unix.Close(fsfd)
	for _, kv := range [][2]string{{"lowerdir", lower}, {"upperdir", upper}, {"workdir", work}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return -1, fmt.Errorf("overlay %s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create overlay of %s: %w", lower, err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fsmount overlay of %s: %w", lower, err)
	}
	return mfd, nil
}

// Clone returns a detached copy of the mount tree at path (in the
// caller's namespace), to be attached elsewhere with Attach.
func Clone(path string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("clone mount %s: %w", path, err)
	}
	return fd, nil
}

// Bind returns a detached bind mount of path (in the caller's namespace):
// with the mounts below it unless recursive is false, read-only (all of
// it) if readOnly. Attach or AttachFile puts it in place.
func Bind(path string, recursive, readOnly bool) (int, error) {
	return BindInUserNS(path, recursive, readOnly, nil)
}

// BindInUserNS is Bind for a pod in user namespace ns (nil: none): the
// bind is idmapped with it, so that the host's root's files are the
// namespace root's (and what that root writes is stored as the host's
// root's), as the kubelet expects of a runtime for hostUsers: false.
func BindInUserNS(path string, recursive, readOnly bool, ns *UserNS) (int, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	var rec int
	if recursive {
		rec = unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, uint(flags|rec))
	if err != nil {
		return -1, fmt.Errorf("bind %s: %w", path, err)
	}
	attr := &unix.MountAttr{}
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if ns != nil {
		usernsFd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		defer unix.Close(usernsFd)
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(usernsFd)
	}
	if attr.Attr_set != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|uint(rec), attr); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind %s (read-only %v, idmapped %v): %w", path, readOnly, ns != nil, err)
		}
	}
	return fd, nil
}

// Attach moves the detached mount mfd onto target inside the mount
// namespace of pid, making target (a directory) first. mfd is closed.
func Attach(pid, mfd int, target string) error {
	return attach(pid, mfd, target, true)
}

// AttachFile is Attach for a mount of a file: target is made an empty
// file.
func AttachFile(pid, mfd int, target string) error {
	return attach(pid, mfd, target, false)
}

func attach(pid, mfd int, target string, dir bool) error {
	defer unix.Close(mfd)
	return In(pid, func() error {
		var err error
		if dir {
			err = os.MkdirAll(target, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(target, os.O_RDONLY|os.O_CREATE, 0o644); err == nil {
				f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("mount point %s in the pod: %w", target, err)
		}
		if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("attach mount at %s in the pod: %w", target, err)
		}
		return nil
	})
}

// Unmount detaches whatever is mounted at target inside the mount
// namespace of pid; a target with nothing mounted is not an error.
func Unmount(pid int, target string) error {
	return In(pid, func() error {
		err := unix.Unmount(target, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s in the pod: %w", target, err)
		}
		return nil
	})
}

// Mounted says whether target is a mount point inside the mount
// namespace of pid.
func Mounted(pid int, target string) (bool, error) {
	var mounted bool
	err := In(pid, func() error {
		// The kernel says so itself (5.8 and later), also for a bind
		// mount from the same filesystem, and for a file.
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, target, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
			return err
		}
		if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			mounted = stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
			return nil
		}
		var st, parent unix.Stat_t
		if err := unix.Lstat(target, &st); err != nil {
			return err
		}
		if err := unix.Lstat(filepath.Dir(target), &parent); err != nil {
			return err
		}
		mounted = st.Dev != parent.Dev
		return nil
	})
	return mounted, err
}
