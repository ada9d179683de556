package stage0

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// ExportApp writes app's root filesystem, as the app left it, as an ACI
// (uncompressed tar) to w, with the app's image manifest. With overlays,
// the root is the image's tree plus the pod's upper directory, merged by
// mounting the overlay again in a throwaway mount namespace.
func ExportApp(ctx context.Context, podDir, app, treeRoot string, w io.Writer) error {
	manifest, err := os.ReadFile(pod.AppImageManifestPath(podDir, app))
	if err != nil {
		return fmt.Errorf("app %s: %w", app, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace dies with the thread
		root := pod.AppRootfsPath(podDir, app)
		if _, err := os.Stat(filepath.Join(podDir, pod.OverlayPrepared)); err == nil {
			cfg, _, err := RunConfigFor(podDir, treeRoot)
			if err != nil {
				errc <- err
				return
			}
			if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
				errc <- fmt.Errorf("private mount namespace: %w", err)
				return
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
				errc <- err
				return
			}
			tree := cfg.AppTreeIDs[app]
			ov := pod.OverlayDir(podDir, tree)
			tmp, err := os.MkdirTemp("", "rkt-export-")
			if err != nil {
				errc <- err
				return
			}
			defer os.Remove(tmp)
			opts := "lowerdir=" + filepath.Join(ov, "upper", app) + ":" + cfg.AppRootfs[app]
			// Read-only overlay of upper over lower: no work dir needed
			// and nothing in the pod changes.
			if err := unix.Mount("overlay", tmp, "overlay", unix.MS_RDONLY, opts); err != nil {
				errc <- fmt.Errorf("mount app %s: %w", app, err)
				return
			}
			defer unix.Unmount(tmp, unix.MNT_DETACH)
			root = tmp
		}
		errc <- writeACI(ctx, w, manifest, root)
	}()
	return <-errc
}

// writeACI tars manifest and root (as rootfs/) to w, keeping owners,
// modes, times, hard links, devices and symlinks.
func writeACI(ctx context.Context, w io.Writer, manifest []byte, root string) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(root, p)
		name := "rootfs"
		if rel != "." {
			name = "rootfs/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return err
		}
		hdr.Name = name
		hdr.Uname, hdr.Gname = "", ""
		st, ok := fi.Sys().(*unix.Stat_t)
		if !ok {
			st = nil
		}
		if st == nil {
			var s unix.Stat_t
			if err := unix.Lstat(p, &s); err == nil {
				st = &s
			}
		}
		if st != nil {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, seen := links[key]; seen {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
		}
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return tw.Close()
}
