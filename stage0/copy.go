package stage0

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rktng/rkt/pkg/appstats"
	"github.com/rktng/rkt/pkg/pod"
)

// `rkt cp` copies files between the host and a running app, through
// /proc/PID/root of the app's process: its root as the app sees it, with
// its volumes. Every access on the app's side goes through an os.Root
// opened there, which refuses to leave it (by "..", or by a symbolic link,
// which must be relative and stay inside), so a path or link in the app
// cannot point the copy at the host's files.

// ErrCopy: a copy that cannot be made as asked.
var ErrCopy = errors.New("cannot copy")

// appRoot opens the root of running app of pod p, and the host UID and GID
// of its root user (not 0 in a pod with --private-users).
func appRoot(p *pod.Pod, app string) (*os.Root, int, int, error) {
	pids, err := appstats.PIDs(p, app)
	if err != nil {
		return nil, 0, 0, err
	}
	pid := strconv.Itoa(pids[0])
	root, err := os.OpenRoot("/proc/" + pid + "/root")
	if errors.Is(err, fs.ErrNotExist) {
		// It exited since its PID was read.
		return nil, 0, 0, fmt.Errorf("app %s: %w", app, appstats.ErrNotRunning)
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("root of app %s: %w", app, err)
	}
	uid, gid := hostIDOfRoot("/proc/"+pid+"/uid_map"), hostIDOfRoot("/proc/"+pid+"/gid_map")
	return root, uid, gid, nil
}

// hostIDOfRoot reads which host ID a user namespace's ID 0 is.
func hostIDOfRoot(mapFile string) int {
	b, err := os.ReadFile(mapFile)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return n
			}
		}
	}
	return 0
}

// inRoot turns an app path into a name for os.Root.
func inRoot(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// CopyIn copies host file or directory src to dst in app of the running
// pod p, as `cp -r` would: into dst when dst is a directory, else to dst.
// What it makes belongs to the app's root user.
func CopyIn(p *pod.Pod, app, src, dst string) error {
	root, uid, gid, err := appRoot(p, app)
	if err != nil {
		return err
	}
	defer root.Close()
	st, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCopy, err)
	}
	target := inRoot(dst)
	if fi, err := root.Stat(target); err == nil && fi.IsDir() {
		target = path.Join(target, filepath.Base(filepath.Clean(src)))
	} else if _, err := root.Stat(path.Dir(target)); err != nil {
		return fmt.Errorf("%w: %s in app %s: %v", ErrCopy, path.Dir(path.Clean("/"+dst)), app, err)
	}
	if !st.IsDir() {
		return copyInOne(root, src, target, st, uid, gid)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCopy, err)
		}
		rel, _ := filepath.Rel(src, p)
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCopy, err)
		}
		return copyInOne(root, p, path.Join(target, filepath.ToSlash(rel)), fi, uid, gid)
	})
}

// copyInOne makes one entry of the host at name in the app.
func copyInOne(root *os.Root, src, name string, fi fs.FileInfo, uid, gid int) error {
	fail := func(err error) error { return fmt.Errorf("%w: %s: %v", ErrCopy, "/"+name, err) }
	switch {
	case fi.IsDir():
		if err := root.Mkdir(name, fi.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return fail(err)
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return fail(err)
		}
		_ = root.Remove(name)
		if err := root.Symlink(target, name); err != nil {
			return fail(err)
		}
		return failIf(root.Lchown(name, uid, gid), fail)
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return fail(err)
		}
		defer in.Close()
		out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return fail(err)
		}
		if err := copyContent(out, in); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("not a file, directory or symbolic link"))
	}
	if err := root.Chmod(name, fi.Mode().Perm()); err != nil {
		return fail(err)
	}
	return failIf(root.Chown(name, uid, gid), fail)
}

func failIf(err error, fail func(error) error) error {
	if err != nil {
		return fail(err)
	}
	return nil
}

// CopyOut copies file or directory src of app in the running pod p to
// dst on the host, as `cp -r` would: into dst when dst is a directory,
// else to dst. What it makes belongs to the caller.
func CopyOut(p *pod.Pod, app, src, dst string) error {
	root, _, _, err := appRoot(p, app)
	if err != nil {
		return err
	}
	defer root.Close()
	name := inRoot(src)
	st, err := root.Lstat(name)
	if err != nil {
		return fmt.Errorf("%w: %s in app %s: %v", ErrCopy, path.Clean("/"+src), app, err)
	}
	target := dst
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		target = filepath.Join(dst, path.Base(path.Clean("/"+src)))
	}
	if !st.IsDir() {
		return copyOutOne(root, name, target, st)
	}
	return fs.WalkDir(root.FS(), name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCopy, err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, name), "/")
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCopy, err)
		}
		return copyOutOne(root, p, filepath.Join(target, filepath.FromSlash(rel)), fi)
	})
}

// copyOutOne makes one entry of the app at dst on the host.
func copyOutOne(root *os.Root, name, dst string, fi fs.FileInfo) error {
	fail := func(err error) error { return fmt.Errorf("%w: %s: %v", ErrCopy, dst, err) }
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return fail(err)
		}
		return failIf(os.Chmod(dst, fi.Mode().Perm()), fail)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := root.Readlink(name)
		if err != nil {
			return fail(err)
		}
		_ = os.Remove(dst)
		return failIf(os.Symlink(target, dst), fail)
	case fi.Mode().IsRegular():
		in, err := root.Open(name)
		if err != nil {
			return fail(err)
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return fail(err)
		}
		if err := copyContent(out, in); err != nil {
			return fail(err)
		}
		return failIf(os.Chmod(dst, fi.Mode().Perm()), fail)
	}
	return fail(fmt.Errorf("not a file, directory or symbolic link"))
}

// copyContent copies in to out and closes out, reporting the first error.
func copyContent(out *os.File, in io.Reader) error {
	_, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
