package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"
)

// sharedVolumesDir holds the pod's empty volumes (stage0 made them).
const sharedVolumesDir = "sharedVolumes"

// setupMounts gives the app's root the host's /proc, /dev and /sys and
// the pod's volumes. All of it happens in the pod's private mount
// namespace, so it is invisible on the host and vanishes with the pod.
func setupMounts(podDir string, pm *schema.PodManifest, ra *schema.RuntimeApp, rootfs string) error {
	for _, m := range []struct {
		src, dst, fstype string
		flags            uintptr
	}{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/dev", "/dev", "", unix.MS_BIND | unix.MS_REC},
		{"/sys", "/sys", "", unix.MS_BIND | unix.MS_REC},
	} {
		target, err := resolveInRoot(rootfs, m.dst)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, target, m.fstype, m.flags, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	for _, m := range ra.Mounts {
		vol := m.AppVolume
		if vol == nil {
			for i := range pm.Volumes {
				if pm.Volumes[i].Name == m.Volume {
					vol = &pm.Volumes[i]
				}
			}
		}
		if vol == nil {
			return fmt.Errorf("mount at %s: no volume %q", m.Path, m.Volume)
		}
		if err := mountVolume(podDir, rootfs, vol, m.Path, mountPointReadOnly(ra.App, m)); err != nil {
			return fmt.Errorf("volume %s at %s: %w", vol.Name, m.Path, err)
		}
	}
	return nil
}

// mountPointReadOnly: the image's mount point of that name may ask for
// read-only too.
func mountPointReadOnly(app *types.App, m schema.Mount) bool {
	if app == nil {
		return false
	}
	for _, mp := range app.MountPoints {
		if mp.Name == m.Volume && mp.ReadOnly {
			return true
		}
	}
	return false
}

func mountVolume(podDir, rootfs string, vol *types.Volume, path string, readOnly bool) error {
	var src string
	recursive := true
	switch vol.Kind {
	case "host":
		src = vol.Source
		if vol.Recursive != nil {
			recursive = *vol.Recursive
		}
	case "empty":
		src = filepath.Join(podDir, sharedVolumesDir, vol.Name.String())
	default:
		return fmt.Errorf("unknown volume kind %q", vol.Kind)
	}
	if vol.ReadOnly != nil && *vol.ReadOnly {
		readOnly = true
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	target, err := resolveInRoot(rootfs, path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else {
		err = makeFile(target)
	}
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, target, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if readOnly {
		return remountReadOnly(target, recursive)
	}
	return nil
}

// remountReadOnly makes the bind at target read-only and, for a recursive
// bind, every mount below it too: a remount changes one mount only, so a
// host submount (a tmpfs under the volume's source) would stay writable.
func remountReadOnly(target string, recursive bool) error {
	if recursive {
		err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("make %s read-only: %w", target, err)
		}
		// Before Linux 5.12: remount each mount of the tree, top first.
		subs, err := mountsBelow(target)
		if err != nil {
			return err
		}
		for _, m := range subs {
			if err := remountOne(m); err != nil {
				return err
			}
		}
		return nil
	}
	return remountOne(target)
}

func remountOne(target string) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(target, &sfs); err != nil {
		return err
	}
	keep := uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// mountsBelow lists the mount points at or under dir, in mount order.
func mountsBelow(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountPath(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func makeFile(target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// resolveInRoot resolves p inside root as if root were "/": symlinks in
// the image are followed but can never lead out of root, so an image
// cannot make us mount over a host path. Missing components are fine
// (they will be created below root).
func resolveInRoot(root, p string) (string, error) {
	var resolved []string // components below root, all resolved
	todo := strings.Split(filepath.Clean("/"+p), "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		cur := filepath.Join(append([]string{root}, append(resolved, c)...)...)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			resolved = append(resolved, c)
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many symlinks", p)
		}
		dest, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(dest) {
			resolved = nil
		}
		todo = append(strings.Split(dest, "/"), todo...)
	}
	return filepath.Join(append([]string{root}, resolved...)...), nil
}
