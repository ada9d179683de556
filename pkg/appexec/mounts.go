package appexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// setupMounts applies the read-only rootfs and the read-only and masked
// paths below root. These are mounts in the caller's mount namespace,
// which a stage1 makes private to the pod (or the app) first.
func (c *Config) setupMounts(root string) error {
	if c.ReadOnlyRootfs && root != "/" {
		if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s for a read-only rootfs: %w", root, err)
		}
		if err := remountReadOnly(root); err != nil {
			return err
		}
	}
	if c.DisablePaths {
		return nil
	}
	for _, p := range c.ReadOnlyPaths {
		target, ok, err := existingInRoot(root, p)
		if err != nil || !ok {
			continue
		}
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s read-only: %w", p, err)
		}
		if err := remountReadOnly(target); err != nil {
			return err
		}
	}
	for _, p := range c.MaskedPaths {
		target, ok, err := existingInRoot(root, p)
		if err != nil || !ok {
			continue
		}
		st, err := os.Stat(target)
		if err != nil {
			continue
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount("/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// remountReadOnly makes the bind mount at target read-only, keeping the
// flags the kernel insists on (nosuid, nodev, noexec of the original
// mount may not be dropped by an unprivileged remount).
func remountReadOnly(target string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", target, err)
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// existingInRoot returns root+p when it exists and is no symlink leading
// out of root (a masked path must be the app's, not a host path).
func existingInRoot(root, p string) (string, bool, error) {
	target := filepath.Join(root, filepath.Clean("/"+p))
	resolved, err := filepath.EvalSymlinks(target)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	rootResolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", false, err
	}
	if rootResolved != "/" && resolved != rootResolved && !strings.HasPrefix(resolved, rootResolved+"/") {
		return "", false, nil
	}
	return resolved, true, nil
}
