package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/appc/spec/pkg/acirenderer"
	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/rktng/rkt/pkg/lock"
)

// Tree is one rendered image (with its dependencies) in the tree store.
type Tree struct {
	// ID names the tree: "deps-sha512-" and the hex SHA-512 of the
	// flattened dependency list's image IDs.
	ID string `json:"id"`
	// Path is DIR/cas/tree/ID, holding rootfs/, manifest, hash, rendered.
	Path string `json:"path"`
	// ImageID is the top image; Images the flattened list, top first.
	ImageID string   `json:"imageID,omitempty"`
	Images  []string `json:"images,omitempty"`
	// RenderTime is when the tree was rendered.
	RenderTime time.Time `json:"renderTime"`
	// Size is the disk space the rootfs takes.
	Size int64 `json:"size,omitempty"`
}

// Rootfs is the rendered root filesystem.
func (t Tree) Rootfs() string { return filepath.Join(t.Path, "rootfs") }

// ManifestPath is the top image's manifest, beside the rootfs.
func (t Tree) ManifestPath() string { return filepath.Join(t.Path, "manifest") }

const (
	treeIDPrefix   = "deps-"
	renderedMarker = "rendered"
	hashFile       = "hash"
	statFile       = "stat"
)

// registry is the store as acirenderer sees it, bound to one read
// transaction so that resolving a whole dependency tree opens the index
// once.
type registry struct {
	s  *Store
	tx *bolt.Tx
	mu sync.Mutex
	// streams maps the digest of each listing handed out by ReadStream to
	// the image it describes, so HashToKey can name it back.
	streams map[string]string
	// entries keeps each image's listing for the hard-link pre-pass.
	entries map[string][]listEntry
}

type listEntry struct {
	name     string
	typeflag byte
	linkname string
}

var _ acirenderer.ACIRegistry = (*registry)(nil)

func (r *registry) GetImageManifest(key string) (*schema.ImageManifest, error) {
	if r.tx == nil {
		return nil, errors.New("registry: no open index")
	}
	info, err := getImage(r.tx, key)
	if err != nil {
		return nil, err
	}
	return parseManifest(info)
}

func (r *registry) GetACI(name types.ACIdentifier, labels types.Labels) (string, error) {
	if r.tx == nil {
		return "", errors.New("registry: no open index")
	}
	id, err := getACITx(r.tx, name, labels)
	if err != nil {
		return "", fmt.Errorf("dependency %w", err)
	}
	return id, nil
}

func (r *registry) ResolveKey(key string) (string, error) {
	if r.tx == nil {
		return "", errors.New("registry: no open index")
	}
	id, err := resolvePrefix(r.tx, key)
	if err != nil {
		return "", fmt.Errorf("dependency %w", err)
	}
	return id, nil
}

// ReadStream hands acirenderer a listing of the image: the blob's tar
// headers with their data left out. acirenderer only needs names and types
// to choose files, and reading (and hashing) every layer's full content a
// second time would double the cost of a render. The blob's content was
// checked against its ID at import; `rkt image verify` checks trees.
func (r *registry) ReadStream(key string) (io.ReadCloser, error) {
	f, err := r.s.OpenImage(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(newSeekReader(f, 64<<10))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	var list []listEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: image %s: %v", ErrInvalidImage, key, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		list = append(list, listEntry{name: hdr.Name, typeflag: hdr.Typeflag, linkname: hdr.Linkname})
		h := &tar.Header{Name: hdr.Name, Typeflag: hdr.Typeflag, Linkname: hdr.Linkname, Mode: hdr.Mode, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image %s: list %q: %w", key, hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	sum := sha512.Sum512(out.Bytes())
	r.mu.Lock()
	r.streams[hex.EncodeToString(sum[:])] = key
	r.entries[key] = list
	r.mu.Unlock()
	return io.NopCloser(&out), nil
}

func (r *registry) HashToKey(h hash.Hash) string {
	sum := hex.EncodeToString(h.Sum(nil))
	r.mu.Lock()
	defer r.mu.Unlock()
	if key, ok := r.streams[sum]; ok {
		return key
	}
	return idPrefix + sum
}

func (s *Store) newRegistry(tx *bolt.Tx) *registry {
	return &registry{s: s, tx: tx, streams: map[string]string{}, entries: map[string][]listEntry{}}
}

// depList flattens the dependencies of image id, top first.
func (s *Store) depList(id string) (acirenderer.Images, error) {
	var imgs acirenderer.Images
	err := s.view(func(tx *bolt.Tx) error {
		reg := s.newRegistry(tx)
		if _, err := getImage(tx, id); err != nil {
			return err
		}
		h, err := types.NewHash(id)
		if err != nil {
			return fmt.Errorf("image %s: %w", id, ErrNotFound)
		}
		imgs, err = acirenderer.CreateDepListFromImageID(*h, reg)
		return err
	})
	return imgs, err
}

func treeIDOf(imgs acirenderer.Images) string {
	h := sha512.New()
	for _, img := range imgs {
		io.WriteString(h, img.Key)
		h.Write([]byte{'\n'})
	}
	return treeIDPrefix + idPrefix + hex.EncodeToString(h.Sum(nil))
}

// Dependencies returns the flattened dependency list of image id, the
// image itself first, as rendering would resolve it now.
func (s *Store) Dependencies(id string) ([]string, error) {
	imgs, err := s.depList(id)
	if err != nil {
		return nil, fmt.Errorf("dependencies of %s: %w", ShortID(id), err)
	}
	ids := make([]string, 0, len(imgs))
	for _, img := range imgs {
		ids = append(ids, img.Key)
	}
	return ids, nil
}

// TreeID returns the ID of the tree that rendering image id gives.
func (s *Store) TreeID(id string) (string, error) {
	imgs, err := s.depList(id)
	if err != nil {
		return "", fmt.Errorf("tree ID of %s: %w", id, err)
	}
	return treeIDOf(imgs), nil
}

func (s *Store) treePath(treeID string) string { return filepath.Join(s.treeDir(), treeID) }

func validTreeID(treeID string) bool {
	return strings.HasPrefix(treeID, treeIDPrefix+idPrefix) && !strings.ContainsAny(treeID, "/\x00") && isHex(treeID[len(treeIDPrefix+idPrefix):])
}

func rendered(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, renderedMarker))
	return err == nil
}

// Render renders image id with its dependencies into the tree store, or
// finds it already there. Concurrent calls (in any process) for the same
// tree render it once; the others wait and share the result.
func (s *Store) Render(ctx context.Context, id string) (Tree, error) {
	t, err := s.render(ctx, id)
	if err != nil {
		return Tree{}, fmt.Errorf("render %s: %w", ShortID(id), err)
	}
	return t, nil
}

func (s *Store) render(ctx context.Context, id string) (Tree, error) {
	imgs, err := s.depList(id)
	if err != nil {
		return Tree{}, err
	}
	t := Tree{ID: treeIDOf(imgs), ImageID: id}
	for _, img := range imgs {
		t.Images = append(t.Images, img.Key)
	}
	t.Path = s.treePath(t.ID)
	if rendered(t.Path) {
		if !s.TrustOnDisk {
			if err := s.checkTree(ctx, t.ID); err != nil {
				return Tree{}, err
			}
		}
		_ = s.touchAll(t.Images)
		return t, nil
	}
	l, err := s.lockTree(ctx, t.ID)
	if err != nil {
		return Tree{}, err
	}
	defer s.unlockTree(l)
	if rendered(t.Path) {
		_ = s.touchAll(t.Images)
		return t, nil
	}
	// A tree without its marker is what a crash left; start afresh.
	if err := os.RemoveAll(t.Path); err != nil {
		return Tree{}, err
	}
	if err := s.renderTree(ctx, imgs, &t); err != nil {
		return Tree{}, err
	}
	_ = s.touchAll(t.Images)
	return t, nil
}

// touchAll marks every image of a tree as used: a dependency is in use
// whenever the image on top of it is, and gc must not take it away.
func (s *Store) touchAll(ids []string) error {
	now := time.Now()
	return s.updateSync(false, func(tx *bolt.Tx) error {
		for _, id := range ids {
			info, err := getImage(tx, id)
			if err != nil {
				continue
			}
			info.LastUsed = now
			if err := putImage(tx, info); err != nil {
				return err
			}
		}
		return nil
	})
}

// lockCtx takes l exclusively, giving up when ctx ends.
func lockCtx(ctx context.Context, l *lock.FileLock) error {
	for {
		err := l.TryExclusive()
		if err != lock.ErrLocked {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Store) treeLockPath(treeID string) string {
	return filepath.Join(s.locksDir(), treeID+".lck")
}

// lockTree takes the exclusive lock of tree treeID. Its lock file lives
// only while someone holds or waits for it: the holder removes it when
// done (unlockTree), so the locks directory does not fill with one file
// per tree ever rendered. A waiter that then gets the lock of a removed
// file holds nothing; it sees that the path no longer names the file it
// locked, and starts over on the file now there.
func (s *Store) lockTree(ctx context.Context, treeID string) (*lock.FileLock, error) {
	p := s.treeLockPath(treeID)
	for {
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		l := lock.FromFd(p, fd)
		if err := lockCtx(ctx, l); err != nil {
			l.Close()
			return nil, err
		}
		if ok, err := stillLinked(l); err != nil || ok {
			if err != nil {
				l.Close()
				return nil, err
			}
			return l, nil
		}
		l.Close()
	}
}

// stillLinked tells whether the file l locked is still the one at its path.
func stillLinked(l *lock.FileLock) (bool, error) {
	var held, now unix.Stat_t
	if err := unix.Fstat(l.Fd(), &held); err != nil {
		return false, fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	if err := unix.Stat(l.Path(), &now); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	return held.Dev == now.Dev && held.Ino == now.Ino, nil
}

// unlockTree removes the lock file while still holding it, then lets go.
func (s *Store) unlockTree(l *lock.FileLock) {
	os.Remove(l.Path())
	l.Close()
}

// cleanLockFiles removes lock files nobody holds: those a killed process
// left, and those of stores written before lock files were removed after
// use. A file someone holds is skipped; one taken meanwhile is left to its
// holder by the same check lockTree makes.
func (s *Store) cleanLockFiles() {
	ents, err := os.ReadDir(s.locksDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lck") {
			continue
		}
		fd, err := unix.Open(filepath.Join(s.locksDir(), e.Name()), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		l := lock.FromFd(filepath.Join(s.locksDir(), e.Name()), fd)
		if l.TryExclusive() == nil {
			if ok, _ := stillLinked(l); ok {
				os.Remove(l.Path())
			}
		}
		l.Close()
	}
}

// extractInto writes the layers of imgs (top first) into dir, which holds
// nothing yet: dir/manifest and dir/rootfs. With all set, the single image
// is extracted whole, without acirenderer's choice of files.
func (s *Store) extractInto(ctx context.Context, imgs acirenderer.Images, dir string, all bool, progress func(done, total int64)) (map[string][]byte, error) {
	reg := s.newRegistry(nil)
	var files acirenderer.RenderedACI
	if all {
		files = acirenderer.RenderedACI{{Key: imgs[0].Key}}
	} else {
		var err error
		if files, err = acirenderer.GetRenderedACIFromList(imgs, reg); err != nil {
			return nil, err
		}
	}
	x, err := newExtractor(dir)
	if err != nil {
		return nil, err
	}
	defer x.close()
	if progress != nil {
		var total int64
		for _, f := range files {
			if fi, err := os.Stat(s.blobPath(f.Key)); err == nil {
				total += fi.Size()
			}
		}
		// Layers are read one after the other: progress is the bytes of
		// the layers done plus the position in the current one.
		var before int64
		x.progress = func(pos int64, layerDone bool) {
			if layerDone {
				before += pos
				pos = 0
			}
			progress(before+pos, total)
		}
	}
	for i, f := range files {
		plan := &layerPlan{id: f.Key, blob: s.blobPath(f.Key), files: f.FileMap, all: all, manifest: i == 0}
		plan.materialize = hiddenLinkTargets(reg.entries[f.Key], f.FileMap)
		if err := x.extractLayer(ctx, i, plan); err != nil {
			if i > 0 {
				return nil, fmt.Errorf("dependency %s: %w", ShortID(f.Key), err)
			}
			return nil, err
		}
	}
	if err := x.finishDirs(); err != nil {
		return nil, err
	}
	return x.sums, nil
}

func (s *Store) renderTree(ctx context.Context, imgs acirenderer.Images, t *Tree) error {
	tmp, err := os.MkdirTemp(s.treeDir(), ".render-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	sums, err := s.extractInto(ctx, imgs, tmp, false, nil)
	if err != nil {
		return err
	}
	sum, size, err := treeHash(tmp, sums)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, hashFile), []byte(sum+"\n")); err != nil {
		return err
	}
	fp, err := statFingerprint(tmp)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, statFile), []byte(fp+"\n")); err != nil {
		return err
	}
	// One syncfs makes every file of the tree durable before it becomes
	// visible under its ID and is marked rendered.
	if err := syncFS(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, t.Path); err != nil {
		return err
	}
	if err := syncDir(s.treeDir()); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(t.Path, renderedMarker), nil); err != nil {
		return err
	}
	if err := syncDir(t.Path); err != nil {
		return err
	}
	t.RenderTime = time.Now()
	t.Size = size
	return s.update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(t)
		return tx.Bucket(bucketTrees).Put([]byte(t.ID), v)
	})
}

// CopyOptions shape ExtractTo.
type CopyOptions struct {
	// Render applies dependencies and pathWhitelist as a pod would see
	// the image; without it the image's own tar is extracted whole.
	Render bool
	// RootfsOnly puts the rootfs's content at dst, without the manifest.
	RootfsOnly bool
	// Overwrite replaces an existing dst.
	Overwrite bool
	// Progress, when set, is called as the images' bytes are read.
	Progress func(done, total int64)
}

// ExtractTo writes image id (rendered with its dependencies, or its own
// tar only) to dst, a directory that must not exist unless Overwrite. The
// result appears at dst whole or not at all.
func (s *Store) ExtractTo(ctx context.Context, id, dst string, o CopyOptions) error {
	if _, err := os.Lstat(dst); err == nil && !o.Overwrite {
		return fmt.Errorf("%s already exists (use --overwrite to replace it)", dst)
	}
	var imgs acirenderer.Images
	if o.Render {
		var err error
		if imgs, err = s.depList(id); err != nil {
			return fmt.Errorf("render %s: %w", ShortID(id), err)
		}
	} else {
		info, err := s.Info(id)
		if err != nil {
			return err
		}
		im, err := parseManifest(info)
		if err != nil {
			return err
		}
		imgs = acirenderer.Images{{Im: im, Key: id}}
	}
	parent := filepath.Dir(filepath.Clean(dst))
	tmp, err := os.MkdirTemp(parent, ".rkt-extract-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if _, err := s.extractInto(ctx, imgs, tmp, !o.Render, o.Progress); err != nil {
		return fmt.Errorf("extract %s: %w", ShortID(id), err)
	}
	src := tmp
	if o.RootfsOnly {
		src = filepath.Join(tmp, "rootfs")
	}
	if o.Overwrite {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	return os.Rename(src, dst)
}

// hiddenLinkTargets finds the hard links a layer renders whose target it
// does not (an upper layer or a pathWhitelist hides it): the target's
// content must then be written under the first such link's name.
func hiddenLinkTargets(list []listEntry, files map[string]struct{}) map[string]string {
	var m map[string]string
	for _, e := range list {
		if e.typeflag != tar.TypeLink {
			continue
		}
		name := path.Clean(e.name)
		if _, ok := files[name]; !ok {
			continue
		}
		target := path.Clean(e.linkname)
		if _, ok := files[target]; ok {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		if _, ok := m[target]; !ok {
			m[target] = name
		}
	}
	return m
}

func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// GetTree returns the rendered tree treeID, or ErrNotFound.
func (s *Store) GetTree(treeID string) (Tree, error) {
	if !validTreeID(treeID) {
		return Tree{}, fmt.Errorf("tree %q: %w", treeID, ErrNotFound)
	}
	t := Tree{ID: treeID, Path: s.treePath(treeID)}
	if !rendered(t.Path) {
		return Tree{}, fmt.Errorf("tree %s: %w", treeID, ErrNotFound)
	}
	_ = s.view(func(tx *bolt.Tx) error {
		if b := bucket(tx, bucketTrees); b != nil {
			if v := b.Get([]byte(treeID)); v != nil {
				_ = json.Unmarshal(v, &t)
			}
		}
		return nil
	})
	t.Path = s.treePath(treeID)
	return t, nil
}

// Trees lists the rendered trees.
func (s *Store) Trees() ([]Tree, error) {
	ents, err := os.ReadDir(s.treeDir())
	if err != nil {
		return nil, err
	}
	var out []Tree
	for _, e := range ents {
		if !validTreeID(e.Name()) {
			continue
		}
		t, err := s.GetTree(e.Name())
		if err != nil {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// VerifyTree recomputes the hash of tree treeID and compares it with the
// one recorded at render time; a mismatch is ErrTreeCorrupt.
func (s *Store) VerifyTree(treeID string) error {
	if !validTreeID(treeID) {
		return fmt.Errorf("verify tree %q: %w", treeID, ErrNotFound)
	}
	dir := s.treePath(treeID)
	if !rendered(dir) {
		return fmt.Errorf("verify tree %s: %w", treeID, ErrNotFound)
	}
	want, err := os.ReadFile(filepath.Join(dir, hashFile))
	if err != nil {
		return fmt.Errorf("verify tree %s: %w: hash file: %v", treeID, ErrTreeCorrupt, err)
	}
	got, _, err := treeHash(dir, nil)
	if err != nil {
		return fmt.Errorf("verify tree %s: %w: %v", treeID, ErrTreeCorrupt, err)
	}
	if strings.TrimSpace(string(want)) != got {
		return fmt.Errorf("verify tree %s: %w: content hash is %s, rendered as %s", treeID, ErrTreeCorrupt, ShortID(got), ShortID(strings.TrimSpace(string(want))))
	}
	return nil
}

// CheckTree is the check Render makes of an already rendered tree, for a
// pod prepared earlier that is about to use tree treeID (run-prepared):
// ErrNotFound if it is gone, ErrTreeCorrupt if its content changed.
func (s *Store) CheckTree(ctx context.Context, treeID string) error {
	if !validTreeID(treeID) || !rendered(s.treePath(treeID)) {
		return fmt.Errorf("check tree %q: %w", treeID, ErrNotFound)
	}
	return s.checkTree(ctx, treeID)
}

// checkTree makes sure a rendered tree is still what was rendered before
// a pod uses it. The cheap part always runs: the tree's stat fingerprint
// (every entry's inode, owner, mode, size, mtime and ctime) against the
// one recorded at render. Any change made through the file system moves
// a ctime, which no one can set back, so an unchanged fingerprint means
// unchanged content without reading it. Only when the fingerprint moved
// (or a tree rendered before fingerprints has none) is the content hashed
// again, under the tree's lock; if it still matches, the new fingerprint
// is recorded and the tree is used.
func (s *Store) checkTree(ctx context.Context, treeID string) error {
	dir := s.treePath(treeID)
	want, _ := os.ReadFile(filepath.Join(dir, statFile))
	if got, err := statFingerprint(dir); err == nil && len(want) > 0 && strings.TrimSpace(string(want)) == got {
		return nil
	}
	l, err := s.lockTree(ctx, treeID)
	if err != nil {
		return err
	}
	defer s.unlockTree(l)
	if err := s.VerifyTree(treeID); err != nil {
		return fmt.Errorf("%w; `rkt image gc` removes the tree once no pod uses it, --insecure-options=ondisk uses it as it is", err)
	}
	fp, err := statFingerprint(dir)
	if err != nil {
		return fmt.Errorf("check tree %s: %w", treeID, err)
	}
	// Losing this write only costs the next start another full check.
	_ = writeFileSync(filepath.Join(dir, statFile), []byte(fp+"\n"))
	return nil
}

// RemoveTree removes tree treeID. Callers check first that no pod uses it.
func (s *Store) RemoveTree(treeID string) error {
	if !validTreeID(treeID) {
		return fmt.Errorf("remove tree %q: %w", treeID, ErrNotFound)
	}
	l, err := s.lockTree(context.Background(), treeID)
	if err != nil {
		return err
	}
	defer s.unlockTree(l)
	dir := s.treePath(treeID)
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return fmt.Errorf("remove tree %s: %w", treeID, ErrNotFound)
	}
	// Rename first: the tree vanishes from its ID at once, and a removal
	// cut short leaves only a hidden directory that gc finishes.
	gone, err := os.MkdirTemp(s.treeDir(), ".remove-")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(gone, "t")); err != nil {
		os.Remove(gone)
		return fmt.Errorf("remove tree %s: %w", treeID, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove tree %s: %w", treeID, err)
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTrees).Delete([]byte(treeID)) })
}
