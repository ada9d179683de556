package store

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// extractor writes the chosen entries of one or more ACI layers into a
// new rootfs. Every path is resolved with openat2(RESOLVE_BENEATH) from the
// rootfs's own descriptor, so no entry (and no symlink an earlier entry
// made) can lead a write outside it; the final component is always
// created with O_EXCL/O_NOFOLLOW-style calls relative to its parent.
type extractor struct {
	rootfs int // O_PATH descriptor of the rootfs being built
	treeFd int // O_PATH descriptor of the directory holding rootfs and manifest
	// created records, for every path made so far, the layer that made
	// it and whether that layer named it (false: an implied parent).
	created map[string]createdBy
	dirs    []dirMeta
	// sums holds the content digest of each regular file written, so the
	// tree hash does not read the files back.
	sums map[string][]byte
	// links records hard links, whose digest is their target's, known
	// once the workers are done.
	links [][2]string
	// cache of the last parent directory opened.
	cacheDir string
	cacheFd  int
	buf      []byte
	h        hash.Hash
	// Regular files' data is copied by workers (see fileJob), so that
	// writing runs on every core while this goroutine goes on with the
	// metadata of the next entries in order.
	jobs    chan fileJob
	wg      sync.WaitGroup
	mu      sync.Mutex
	jobErr  error
	workers int
	// progress, when set, hears the position in the current layer's
	// blob, and its size once the layer is done.
	progress func(pos int64, layerDone bool)
}

// fileJob is one regular file to fill: size bytes at offset off of the
// blob (an uncompressed tar, so each file's data is one contiguous range)
// go to fd, then owner, mode, xattrs and times are set and fd is closed.
type fileJob struct {
	fd   int
	blob *os.File
	off  int64
	hdr  *tar.Header
	rel  string
	name string
}

type createdBy struct {
	layer    int
	explicit bool
	dir      bool
}

type dirMeta struct {
	rel  string
	hdr  *tar.Header
	name string
}

// newContentHash is the digest of file contents inside the tree hash.
// SHA-256 runs on the CPU's SHA extensions where present.
func newContentHash() hash.Hash { return sha256.New() }

func newExtractor(treeDir string) (*extractor, error) {
	treeFd, err := unix.Open(treeDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", treeDir, err)
	}
	if err := unix.Mkdirat(treeFd, "rootfs", 0o755); err != nil {
		unix.Close(treeFd)
		return nil, fmt.Errorf("mkdir %s/rootfs: %w", treeDir, err)
	}
	rootfs, err := unix.Openat(treeFd, "rootfs", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(treeFd)
		return nil, fmt.Errorf("open %s/rootfs: %w", treeDir, err)
	}
	x := &extractor{rootfs: rootfs, treeFd: treeFd, created: map[string]createdBy{}, sums: map[string][]byte{},
		cacheFd: -1, buf: make([]byte, 1<<20), h: newContentHash(), jobs: make(chan fileJob, 64)}
	x.workers = max(runtime.GOMAXPROCS(0), 2)
	for i := 0; i < x.workers; i++ {
		go x.worker(x.jobs)
	}
	return x, nil
}

// worker gets the channel as an argument: close clears the field, and a
// worker that had not started yet would otherwise range over nil forever.
func (x *extractor) worker(jobs <-chan fileJob) {
	buf := make([]byte, 1<<20)
	h := newContentHash()
	for j := range jobs {
		sum, err := fillFile(j, buf, h)
		if cerr := unix.Close(j.fd); err == nil && cerr != nil {
			err = cerr
		}
		x.mu.Lock()
		if err != nil && x.jobErr == nil {
			x.jobErr = fmt.Errorf("tar entry %q: %w", j.name, err)
		}
		if err == nil {
			x.sums[j.rel] = sum
		}
		x.mu.Unlock()
		x.wg.Done()
	}
}

func fillFile(j fileJob, buf []byte, h hash.Hash) ([]byte, error) {
	h.Reset()
	for done := int64(0); done < j.hdr.Size; {
		n := int64(len(buf))
		if rest := j.hdr.Size - done; rest < n {
			n = rest
		}
		m, err := j.blob.ReadAt(buf[:n], j.off+done)
		if int64(m) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: reading tar data: %v", ErrInvalidImage, err)
		}
		h.Write(buf[:n])
		if err := writeAll(j.fd, buf[:n]); err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		done += n
	}
	if err := fileMeta(j.fd, j.hdr); err != nil {
		return nil, err
	}
	// Times last: writing the data would move them again.
	if err := futimens(j.fd, j.hdr); err != nil {
		return nil, fmt.Errorf("set times: %w", err)
	}
	return h.Sum(nil), nil
}

// futimens sets a file's times by descriptor, to the nanosecond
// (utimensat with a NULL path, which x/sys/unix has no wrapper for).
func futimens(fd int, hdr *tar.Header) error {
	ts := fileTimes(hdr)
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func fileTimes(hdr *tar.Header) [2]unix.Timespec {
	mt := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	at := mt
	if !hdr.AccessTime.IsZero() {
		at = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	return [2]unix.Timespec{at, mt}
}

// wait blocks until every queued file is written and returns the first
// error a worker met.
func (x *extractor) wait() error {
	x.wg.Wait()
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.jobErr
}

func (x *extractor) close() {
	if x.jobs != nil {
		x.wg.Wait()
		close(x.jobs)
		x.jobs = nil
	}
	x.dropCache()
	unix.Close(x.rootfs)
	unix.Close(x.treeFd)
}

func (x *extractor) dropCache() {
	if x.cacheFd >= 0 {
		unix.Close(x.cacheFd)
	}
	x.cacheFd, x.cacheDir = -1, ""
}

// layerPlan says what to take from one layer: the files acirenderer chose,
// and the hard-link targets an upper layer hides that some chosen link in
// this layer still needs (their content goes to the first such link).
type layerPlan struct {
	id    string
	blob  string
	files map[string]struct{}
	// all takes every entry (image extract), ignoring files.
	all         bool
	materialize map[string]string
	// manifest: write this layer's manifest next to the rootfs.
	manifest bool
}

// unsafeErr explains an entry that would land outside the rootfs.
func unsafeErr(name string, format string, args ...any) error {
	return fmt.Errorf("%w: tar entry %q: %s", ErrUnsafePath, name, fmt.Sprintf(format, args...))
}

// beneathErr words an openat2 failure while resolving a parent directory.
func beneathErr(name, dir string, err error) error {
	switch {
	case errors.Is(err, unix.EXDEV):
		return unsafeErr(name, "parent %q leads outside the image (through a symlink or \"..\")", dir)
	case errors.Is(err, unix.ELOOP):
		return unsafeErr(name, "parent %q: too many levels of symlinks", dir)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: tar entry %q: parent %q is not a directory", ErrInvalidImage, name, dir)
	}
	return fmt.Errorf("tar entry %q: open parent %q: %w", name, dir, err)
}

var beneath = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
}

// openDir opens dir (relative to the rootfs) beneath the rootfs, making
// missing components as implied directories of layer.
func (x *extractor) openDir(name, dir string, layer int) (int, error) {
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(x.rootfs, dir, &beneath)
		if err == nil {
			return fd, nil
		}
		if err == unix.EAGAIN && tries < 100 {
			continue
		}
		if err != unix.ENOENT || tries > 0 {
			return -1, beneathErr(name, dir, err)
		}
		// Make the missing chain, one component at a time, each under a
		// parent resolved beneath the rootfs.
		pdir := path.Dir(dir)
		pfd := x.rootfs
		if pdir != "." {
			if pfd, err = x.openDir(name, pdir, layer); err != nil {
				return -1, err
			}
		}
		err = unix.Mkdirat(pfd, path.Base(dir), 0o755)
		if pfd != x.rootfs {
			unix.Close(pfd)
		}
		if err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("tar entry %q: mkdir %q: %w", name, dir, err)
		}
		if err == nil {
			x.created[dir] = createdBy{layer: layer, dir: true}
		}
	}
}

// parent returns a descriptor for the directory holding rel; the caller
// must not close it (it is cached or the rootfs itself).
func (x *extractor) parent(name, rel string, layer int) (int, error) {
	dir := path.Dir(rel)
	if dir == "." {
		return x.rootfs, nil
	}
	if dir == x.cacheDir {
		return x.cacheFd, nil
	}
	fd, err := x.openDir(name, dir, layer)
	if err != nil {
		return -1, err
	}
	x.dropCache()
	x.cacheDir, x.cacheFd = dir, fd
	return fd, nil
}

func (x *extractor) extractLayer(ctx context.Context, layer int, plan *layerPlan) error {
	f, err := os.Open(plan.blob)
	if err != nil {
		return fmt.Errorf("open image %s: %w", plan.id, err)
	}
	// Workers read from f after this function returns to the queue; wait
	// for them before closing it.
	defer func() {
		x.wg.Wait()
		f.Close()
	}()
	sr := newSeekReader(f, 64<<10)
	tr := tar.NewReader(sr)
	src := dataSource{blob: f, pos: sr}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if x.failed() {
			return x.wait()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if x.progress != nil {
				x.progress(sr.pos, true)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: image %s: reading tar: %v", ErrInvalidImage, plan.id, err)
		}
		if x.progress != nil {
			x.progress(sr.pos, false)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return unsafeErr(hdr.Name, "%v", err)
		}
		if name == "." {
			continue
		}
		if name == "manifest" {
			if plan.manifest {
				if err := x.writeManifest(tr, hdr); err != nil {
					return err
				}
			}
			continue
		}
		if _, ok := plan.files[name]; !ok && !plan.all {
			if link, ok := plan.materialize[name]; ok && hdr.Typeflag == tar.TypeReg {
				rel := strings.TrimPrefix(link, "rootfs/")
				if err := x.entry(src, hdr, link, rel, layer); err != nil {
					return err
				}
			}
			continue
		}
		if name == "rootfs" {
			x.dirs = append(x.dirs, dirMeta{rel: ".", hdr: hdr, name: hdr.Name})
			continue
		}
		if !strings.HasPrefix(name, "rootfs/") {
			continue
		}
		rel := name[len("rootfs/"):]
		if hdr.Typeflag == tar.TypeLink {
			if err := x.hardlink(hdr, name, rel, layer, plan); err != nil {
				return err
			}
			continue
		}
		if err := x.entry(src, hdr, hdr.Name, rel, layer); err != nil {
			return err
		}
	}
}

// dataSource locates the current entry's data in the blob.
type dataSource struct {
	blob *os.File
	pos  *seekReader
}

func (x *extractor) failed() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.jobErr != nil
}

func (x *extractor) writeManifest(tr io.Reader, hdr *tar.Header) error {
	fd, err := unix.Openat(x.treeFd, "manifest", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	defer unix.Close(fd)
	if _, err := x.copyData(fd, tr, hdr.Size); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// prepare makes room for rel in layer: it reports skip when an upper
// layer already owns the path, and removes what an earlier entry of the
// same layer put there (the later entry of a tar wins).
func (x *extractor) prepare(pfd int, rel string, isDir bool, layer int) (skip bool, err error) {
	c, ok := x.created[rel]
	if !ok {
		return false, nil
	}
	if c.layer != layer {
		// An upper layer made it: explicitly (it wins) or as an implied
		// directory, whose metadata the lower layer's entry may supply.
		return !(isDir && c.dir && !c.explicit), nil
	}
	if isDir && c.dir {
		return false, nil
	}
	flags := 0
	if c.dir {
		flags = unix.AT_REMOVEDIR
	}
	// A worker may still be filling the file being replaced; let it
	// finish so its digest cannot land after the replacement's.
	if err := x.wait(); err != nil {
		return false, err
	}
	x.dropCache()
	if err := unix.Unlinkat(pfd, path.Base(rel), flags); err != nil && err != unix.ENOENT {
		return false, fmt.Errorf("replace %q: %w", rel, err)
	}
	delete(x.created, rel)
	x.mu.Lock()
	delete(x.sums, rel)
	x.mu.Unlock()
	return false, nil
}

func (x *extractor) entry(src dataSource, hdr *tar.Header, name, rel string, layer int) error {
	pfd, err := x.parent(name, rel, layer)
	if err != nil {
		return err
	}
	base := path.Base(rel)
	isDir := hdr.Typeflag == tar.TypeDir
	skip, err := x.prepare(pfd, rel, isDir, layer)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", name, err)
	}
	if skip {
		return nil
	}
	// Re-resolve: prepare may have dropped the cached parent.
	if pfd, err = x.parent(name, rel, layer); err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && err != unix.EEXIST {
			return fmt.Errorf("tar entry %q: mkdir: %w", name, err)
		} else if err == unix.EEXIST {
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return fmt.Errorf("tar entry %q: a non-directory is in the way", name)
			}
		}
		x.created[rel] = createdBy{layer: layer, explicit: true, dir: true}
		x.dirs = append(x.dirs, dirMeta{rel: rel, hdr: hdr, name: name})
		return nil
	case tar.TypeReg:
		if isSparse(hdr) {
			return fmt.Errorf("%w: tar entry %q: sparse files are not supported", ErrInvalidImage, name)
		}
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("tar entry %q: create: %w", name, err)
		}
		x.created[rel] = createdBy{layer: layer, explicit: true}
		x.wg.Add(1)
		x.jobs <- fileJob{fd: fd, blob: src.blob, off: src.pos.pos, hdr: hdr, rel: rel, name: name}
		return nil
	case tar.TypeSymlink:
		// The link itself is data, absolute or not; only paths that
		// later go through it are checked.
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("tar entry %q: symlink: %w", name, err)
		}
		x.created[rel] = createdBy{layer: layer, explicit: true}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("tar entry %q: lchown: %w", name, err)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return fmt.Errorf("tar entry %q: mknod: %w", name, err)
		}
		x.created[rel] = createdBy{layer: layer, explicit: true}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("tar entry %q: lchown: %w", name, err)
		}
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("tar entry %q: chmod: %w", name, err)
		}
	default:
		return fmt.Errorf("%w: tar entry %q: unsupported type %q", ErrInvalidImage, name, hdr.Typeflag)
	}
	if err := setXattrsAt(pfd, base, hdr); err != nil {
		return fmt.Errorf("tar entry %q: %w", name, err)
	}
	return setTimes(pfd, base, hdr, name)
}

// setXattrsAt sets the xattrs of a symlink, device or fifo, none of which
// can be opened for fsetxattr without following or blocking. The path goes
// through the parent's descriptor in /proc, so no symlink is followed on
// the way and the final one (base) is not followed either (lsetxattr).
func setXattrsAt(pfd int, base string, hdr *tar.Header) error {
	var p string
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if p == "" {
			p = fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
		}
		if err := unix.Lsetxattr(p, attr, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", attr, err)
		}
	}
	return nil
}

func setTimes(pfd int, base string, hdr *tar.Header, name string) error {
	ts := fileTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("tar entry %q: set times: %w", name, err)
	}
	return nil
}

// fileMeta sets owner, then mode (chown clears setuid bits), then xattrs.
func fileMeta(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return setXattrs(fd, hdr)
}

func setXattrs(fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Fsetxattr(fd, attr, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", attr, err)
		}
	}
	return nil
}

func (x *extractor) copyData(fd int, r io.Reader, size int64) ([]byte, error) {
	x.h.Reset()
	var done int64
	for done < size {
		want := int64(len(x.buf))
		if size-done < want {
			want = size - done
		}
		n, err := io.ReadFull(r, x.buf[:want])
		if n > 0 {
			x.h.Write(x.buf[:n])
			if werr := writeAll(fd, x.buf[:n]); werr != nil {
				return nil, fmt.Errorf("write: %w", werr)
			}
			done += int64(n)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading tar data: %v", ErrInvalidImage, err)
		}
	}
	return x.h.Sum(nil), nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (x *extractor) hardlink(hdr *tar.Header, name, rel string, layer int, plan *layerPlan) error {
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil {
		return unsafeErr(hdr.Name, "hard link target %q: %v", hdr.Linkname, err)
	}
	if !strings.HasPrefix(target, "rootfs/") {
		return unsafeErr(hdr.Name, "hard link to %q, outside the image", hdr.Linkname)
	}
	if alias, ok := plan.materialize[target]; ok {
		if alias == name {
			return nil // already written with the target's content
		}
		target = alias
	}
	trel := target[len("rootfs/"):]
	if c, ok := x.created[trel]; !ok || c.layer != layer || c.dir {
		return fmt.Errorf("%w: tar entry %q: hard link target %q is not a file this image rendered", ErrInvalidImage, hdr.Name, hdr.Linkname)
	}
	// Resolve the target's parent first, beneath the rootfs; keep it open
	// while the link's own parent is resolved.
	tdir := path.Dir(trel)
	tfd := x.rootfs
	if tdir != "." {
		if tfd, err = x.openDir(hdr.Name, tdir, layer); err != nil {
			return err
		}
		defer unix.Close(tfd)
	}
	pfd, err := x.parent(name, rel, layer)
	if err != nil {
		return err
	}
	skip, err := x.prepare(pfd, rel, false, layer)
	if err != nil || skip {
		return err
	}
	if pfd, err = x.parent(name, rel, layer); err != nil {
		return err
	}
	if err := unix.Linkat(tfd, path.Base(trel), pfd, path.Base(rel), 0); err != nil {
		return fmt.Errorf("tar entry %q: link to %q: %w", hdr.Name, hdr.Linkname, err)
	}
	x.created[rel] = createdBy{layer: layer, explicit: true}
	x.links = append(x.links, [2]string{rel, trel})
	return nil
}

// finishDirs applies directory metadata last, so that creating entries
// inside a directory does not change its recorded mtime afterwards.
func (x *extractor) finishDirs() error {
	if err := x.wait(); err != nil {
		return err
	}
	for _, l := range x.links {
		if s, ok := x.sums[l[1]]; ok {
			x.sums[l[0]] = s
		}
	}
	x.dropCache()
	// Deepest first, so a read-only parent is set after its children.
	sort.SliceStable(x.dirs, func(i, j int) bool {
		return strings.Count(x.dirs[i].rel, "/") > strings.Count(x.dirs[j].rel, "/")
	})
	for _, d := range x.dirs {
		if err := x.dirMeta(d); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) dirMeta(d dirMeta) error {
	var fd, pfd int
	var base string
	var err error
	if d.rel == "." {
		pfd, base = x.treeFd, "rootfs"
		fd, err = unix.Openat(x.treeFd, "rootfs", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	} else {
		pdir := path.Dir(d.rel)
		pfd = x.rootfs
		if pdir != "." {
			if pfd, err = x.openDir(d.name, pdir, -1); err != nil {
				return err
			}
			defer unix.Close(pfd)
		}
		base = path.Base(d.rel)
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("tar entry %q: open directory: %w", d.name, err)
	}
	err = fileMeta(fd, d.hdr)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", d.name, err)
	}
	return setTimes(pfd, base, d.hdr, d.name)
}
