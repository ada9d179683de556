package store

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// treeHash digests a rendered tree: the manifest and, for every path under
// rootfs in lexical order, its type, mode, owner, size, mtime, device
// number, symlink target, xattrs and content digest. It reads the metadata
// from the files themselves (lstat, never following symlinks), so what
// Render records and what VerifyTree recomputes are measured the same way;
// content digests may come from sums (computed while writing) to spare a
// second read of every file. It also returns the disk space the rootfs
// takes (hard-linked files counted once).
func treeHash(dir string, sums map[string][]byte) (string, int64, error) {
	var used int64
	inodes := map[uint64]bool{}
	h := sha512.New()
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest"))
	if err != nil {
		return "", 0, err
	}
	fmt.Fprintf(h, "manifest %d\n", len(manifest))
	h.Write(manifest)
	root := filepath.Join(dir, "rootfs")
	content := newContentHash()
	buf := make([]byte, 1<<20)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if !inodes[st.Ino] {
			inodes[st.Ino] = true
			used += st.Blocks * 512
		}
		fmt.Fprintf(h, "%q %o %d:%d %d %d.%09d", rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", target)
		case unix.S_IFCHR, unix.S_IFBLK:
			fmt.Fprintf(h, " dev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFREG:
			sum, ok := sums[rel]
			if !ok {
				if sum, err = fileDigest(p, content, buf); err != nil {
					return err
				}
			}
			fmt.Fprintf(h, " %x", sum)
		}
		xa, err := xattrs(p)
		if err != nil {
			return err
		}
		for _, kv := range xa {
			fmt.Fprintf(h, " x:%q=%x", kv[0], kv[1])
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("hash tree %s: %w", dir, err)
	}
	return "sha512-" + hex.EncodeToString(h.Sum(nil)), used, nil
}

func fileDigest(p string, h interface {
	io.Writer
	Reset()
	Sum([]byte) []byte
}, buf []byte) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h.Reset()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// xattrs lists a file's extended attributes, sorted by name.
func xattrs(p string) ([][2]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if err == unix.ENOTSUP {
			err = nil
		}
		return nil, err
	}
	names := make([]byte, sz)
	sz, err = unix.Llistxattr(p, names)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, n := range strings.Split(string(bytes.TrimRight(names[:sz], "\x00")), "\x00") {
		if n == "" {
			continue
		}
		vsz, err := unix.Lgetxattr(p, n, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vsz)
		if vsz > 0 {
			if vsz, err = unix.Lgetxattr(p, n, v); err != nil {
				return nil, err
			}
		}
		out = append(out, [2]string{n, string(v[:vsz])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// statFingerprint digests the metadata of a rendered tree's manifest and
// every entry under its rootfs, reading no content: what checkTree
// compares on each use of the tree. ctime is in it because any change to
// a file (content, mode, owner, xattrs, links) sets it to the present,
// and nothing can set it back.
func statFingerprint(dir string) (string, error) {
	h := sha512.New()
	line := func(rel string, st *unix.Stat_t) {
		fmt.Fprintf(h, "%q %d %o %d:%d %d %d %d.%09d %d.%09d\n", rel, st.Ino, st.Mode, st.Uid, st.Gid, st.Nlink, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "manifest"), &st); err != nil {
		return "", fmt.Errorf("stat tree %s: %w", dir, err)
	}
	line("/manifest", &st)
	root := filepath.Join(dir, "rootfs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line(p[len(root):], &st)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("stat tree %s: %w", dir, err)
	}
	return "sha512-" + hex.EncodeToString(h.Sum(nil)), nil
}
