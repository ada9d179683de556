package store

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
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
// and nothing can set it back. It runs on every pod start, so it walks
// by directory descriptors (no path lookups) and encodes in binary.
func statFingerprint(dir string) (string, error) {
	fp := fingerprint{h: sha512.New()}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "manifest"), &st); err != nil {
		return "", fmt.Errorf("stat tree %s: %w", dir, err)
	}
	fp.add("/manifest", &st)
	root := filepath.Join(dir, "rootfs")
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("stat tree %s: %w", dir, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("stat tree %s: %w", dir, err)
	}
	fp.add("/", &st)
	if err := fp.walk(fd, "/"); err != nil {
		return "", fmt.Errorf("stat tree %s: %w", dir, err)
	}
	return "sha512-" + hex.EncodeToString(fp.h.Sum(nil)), nil
}

type fingerprint struct {
	h   hash.Hash
	buf []byte
}

func (f *fingerprint) add(rel string, st *unix.Stat_t) {
	b := append(f.buf[:0], rel...)
	b = append(b, 0)
	for _, v := range []uint64{st.Ino, uint64(st.Mode), uint64(st.Uid), uint64(st.Gid), uint64(st.Nlink), uint64(st.Size),
		uint64(st.Mtim.Sec), uint64(st.Mtim.Nsec), uint64(st.Ctim.Sec), uint64(st.Ctim.Nsec)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	f.buf = b
	f.h.Write(b)
}

// walk adds every entry of the directory open at fd (named rel), in
// lexical order, and descends into subdirectories; it closes fd.
func (f *fingerprint) walk(fd int, rel string) error {
	d := os.NewFile(uintptr(fd), rel)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return err
	}
	defer d.Close()
	sort.Strings(names)
	var st unix.Stat_t
	for _, n := range names {
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", path.Join(rel, n), err)
		}
		p := path.Join(rel, n)
		f.add(p, &st)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := f.walk(sub, p); err != nil {
			return err
		}
	}
	return nil
}
