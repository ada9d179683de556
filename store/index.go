package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	bolt "go.etcd.io/bbolt"
)

// idPrefix starts every appc image ID this store knows (SHA-512 only).
const idPrefix = "sha512-"

// ShortIDLen is the number of hex digits rkt printed for an image ID.
const ShortIDLen = 32

// ShortID is the form rkt printed in tables: sha512- and 32 hex digits.
func ShortID(id string) string {
	if len(id) > len(idPrefix)+ShortIDLen {
		return id[:len(idPrefix)+ShortIDLen]
	}
	return id
}

// ImageInfo is one row of the index.
type ImageInfo struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels,omitempty"`
	ImportTime time.Time         `json:"importTime"`
	LastUsed   time.Time         `json:"lastUsed"`
	// Size is the uncompressed ACI's size in bytes.
	Size int64 `json:"size"`
	// TreeSize is the disk space of the trees rendered with this image
	// on top, filled in by List (not stored).
	TreeSize  int64  `json:"-"`
	SourceURL string `json:"sourceURL,omitempty"`
	// ETag and CacheMaxAge repeat the HTTP metadata the image came with
	// (see Remote for the per-URL record the fetcher consults).
	ETag        string `json:"etag,omitempty"`
	CacheMaxAge int    `json:"cacheMaxAge,omitempty"`
	// Latest is set when the image was fetched by name without a version
	// (rkt's "latest" pattern).
	Latest bool `json:"latest,omitempty"`
	// Manifest is the image manifest as stored in the ACI, kept here so
	// that resolving dependencies never opens a blob.
	Manifest json.RawMessage `json:"manifest"`
}

// Version is the image's version label, or "".
func (i ImageInfo) Version() string { return i.Labels["version"] }

// Remote is what the fetcher remembers about an HTTP(S) source, keyed by
// URL: enough to send If-None-Match and to honour Cache-Control max-age.
type Remote struct {
	URL     string `json:"url"`
	ImageID string `json:"imageID"`
	ETag    string `json:"etag,omitempty"`
	// CacheMaxAge is the max-age in seconds the server sent (0: none).
	CacheMaxAge int `json:"cacheMaxAge,omitempty"`
	// DownloadTime is when the image was last downloaded or revalidated.
	DownloadTime time.Time `json:"downloadTime"`
}

// Fresh tells whether the cached copy may be used without asking the
// server again.
func (r Remote) Fresh(now time.Time) bool {
	return r.CacheMaxAge > 0 && now.Before(r.DownloadTime.Add(time.Duration(r.CacheMaxAge)*time.Second))
}

func getImage(tx *bolt.Tx, id string) (ImageInfo, error) {
	var info ImageInfo
	b := bucket(tx, bucketImages)
	if b == nil {
		return info, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	v := b.Get([]byte(id))
	if v == nil {
		return info, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err := json.Unmarshal(v, &info); err != nil {
		return info, fmt.Errorf("image %s: corrupt index row: %w", id, err)
	}
	return info, nil
}

func putImage(tx *bolt.Tx, info ImageInfo) error {
	v, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(info.ID), v)
}

func allImages(tx *bolt.Tx) ([]ImageInfo, error) {
	b := bucket(tx, bucketImages)
	if b == nil {
		return nil, nil
	}
	var out []ImageInfo
	err := b.ForEach(func(k, v []byte) error {
		var info ImageInfo
		if err := json.Unmarshal(v, &info); err != nil {
			return fmt.Errorf("image %s: corrupt index row: %w", k, err)
		}
		out = append(out, info)
		return nil
	})
	return out, err
}

// Info returns the index row of the image with the full ID id.
func (s *Store) Info(id string) (ImageInfo, error) {
	var info ImageInfo
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		info, err = getImage(tx, id)
		return err
	})
	return info, err
}

// List returns every image, oldest import first, with TreeSize set.
func (s *Store) List() ([]ImageInfo, error) {
	var out []ImageInfo
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if out, err = allImages(tx); err != nil {
			return err
		}
		b := bucket(tx, bucketTrees)
		if b == nil {
			return nil
		}
		sizes := map[string]int64{}
		b.ForEach(func(_, v []byte) error {
			var t Tree
			if json.Unmarshal(v, &t) == nil {
				sizes[t.ImageID] += t.Size
			}
			return nil
		})
		for i := range out {
			out[i].TreeSize = sizes[out[i].ID]
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ImportTime.Before(out[j].ImportTime) })
	return out, err
}

// Manifest returns the parsed manifest of image id.
func (s *Store) Manifest(id string) (*schema.ImageManifest, error) {
	info, err := s.Info(id)
	if err != nil {
		return nil, err
	}
	return parseManifest(info)
}

func parseManifest(info ImageInfo) (*schema.ImageManifest, error) {
	var im schema.ImageManifest
	if err := json.Unmarshal(info.Manifest, &im); err != nil {
		return nil, fmt.Errorf("image %s: stored manifest: %w", info.ID, err)
	}
	return &im, nil
}

// OpenImage opens the blob of image id: the uncompressed ACI.
func (s *Store) OpenImage(id string) (*os.File, error) {
	if !validID(id) {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	f, err := os.Open(s.blobPath(id))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("image %s: blob missing: %w", id, ErrNotFound)
	}
	return f, err
}

func validID(id string) bool {
	if !strings.HasPrefix(id, idPrefix) || len(id) != len(idPrefix)+128 {
		return false
	}
	return isHex(id[len(idPrefix):])
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Resolve turns what a user typed into a full image ID. It accepts a full
// ID, any unique ID prefix (starting "sha512-"), a name, "name:version",
// and a name followed by labels: "name,version=1.0,arch=amd64". For names,
// the most recently imported matching image wins, as rkt did.
func (s *Store) Resolve(ref string) (string, error) {
	var id string
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		id, err = resolveTx(tx, ref)
		return err
	})
	return id, err
}

func resolveTx(tx *bolt.Tx, ref string) (string, error) {
	if strings.HasPrefix(ref, idPrefix) {
		return resolvePrefix(tx, ref)
	}
	name, labels, err := ParseImageRef(ref)
	if err != nil {
		return "", err
	}
	return getACITx(tx, name, labels)
}

func resolvePrefix(tx *bolt.Tx, prefix string) (string, error) {
	hex := strings.ToLower(prefix[len(idPrefix):])
	if !isHex(hex) || len(hex) > 128 {
		return "", fmt.Errorf("image %q: not an image ID: %w", prefix, ErrNotFound)
	}
	b := bucket(tx, bucketImages)
	if b == nil {
		return "", fmt.Errorf("image %s: %w", prefix, ErrNotFound)
	}
	p := []byte(idPrefix + hex)
	c := b.Cursor()
	k, _ := c.Seek(p)
	if k == nil || !bytes.HasPrefix(k, p) {
		return "", fmt.Errorf("image %s: %w", prefix, ErrNotFound)
	}
	if k2, _ := c.Next(); k2 != nil && bytes.HasPrefix(k2, p) {
		return "", fmt.Errorf("image %s: %w", prefix, ErrAmbiguous)
	}
	return string(k), nil
}

// ParseImageRef splits "name[:version][,label=value...]" into an appc name
// and labels.
func ParseImageRef(ref string) (types.ACIdentifier, types.Labels, error) {
	parts := strings.Split(ref, ",")
	nameVer := parts[0]
	var labels types.Labels
	if i := strings.LastIndex(nameVer, ":"); i >= 0 {
		labels = append(labels, types.Label{Name: "version", Value: nameVer[i+1:]})
		nameVer = nameVer[:i]
	}
	name, err := types.NewACIdentifier(nameVer)
	if err != nil {
		return "", nil, fmt.Errorf("image %q: bad name: %v: %w", ref, err, ErrNotFound)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("image %q: bad label %q (want NAME=VALUE): %w", ref, p, ErrNotFound)
		}
		ln, err := types.NewACIdentifier(k)
		if err != nil {
			return "", nil, fmt.Errorf("image %q: bad label name %q: %w", ref, k, ErrNotFound)
		}
		labels = append(labels, types.Label{Name: *ln, Value: v})
	}
	return *name, labels, nil
}

// GetACI returns the ID of the most recently imported image called name
// whose labels include all of labels. A "version" label of "latest"
// matches any version when no image carries that version literally.
// It is half of what acirenderer.ACIRegistry asks for.
func (s *Store) GetACI(name types.ACIdentifier, labels types.Labels) (string, error) {
	var id string
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		id, err = getACITx(tx, name, labels)
		return err
	})
	return id, err
}

func getACITx(tx *bolt.Tx, name types.ACIdentifier, labels types.Labels) (string, error) {
	imgs, err := allImages(tx)
	if err != nil {
		return "", err
	}
	id := bestMatch(imgs, name, labels)
	if id == "" {
		var latest types.Labels
		for _, l := range labels {
			if !(l.Name == "version" && l.Value == "latest") {
				latest = append(latest, l)
			}
		}
		if len(latest) != len(labels) {
			id = bestMatch(imgs, name, latest)
		}
	}
	if id == "" {
		return "", fmt.Errorf("image %s: %w", describe(name, labels), ErrNotFound)
	}
	return id, nil
}

func bestMatch(imgs []ImageInfo, name types.ACIdentifier, labels types.Labels) string {
	var best *ImageInfo
	for i := range imgs {
		img := &imgs[i]
		if img.Name != name.String() {
			continue
		}
		ok := true
		for _, l := range labels {
			if img.Labels[l.Name.String()] != l.Value {
				ok = false
				break
			}
		}
		if ok && (best == nil || img.ImportTime.After(best.ImportTime)) {
			best = img
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

func describe(name types.ACIdentifier, labels types.Labels) string {
	s := name.String()
	for _, l := range labels {
		s += "," + l.Name.String() + "=" + l.Value
	}
	return s
}

// Touch records that image id was just used. Losing a touch in a crash is
// harmless, so the write is not synced.
func (s *Store) Touch(id string) error {
	return s.updateSync(false, func(tx *bolt.Tx) error {
		info, err := getImage(tx, id)
		if err != nil {
			return err
		}
		info.LastUsed = time.Now()
		return putImage(tx, info)
	})
}

// RemoveImage removes the index row, the blob and the remembered file and
// URL records of image id. Trees are left to RemoveTree, which callers use
// after checking no pod needs them.
func (s *Store) RemoveImage(id string) error {
	if !validID(id) {
		return fmt.Errorf("remove image %s: %w", id, ErrNotFound)
	}
	err := s.update(func(tx *bolt.Tx) error {
		if _, err := getImage(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketImages).Delete([]byte(id)); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketFiles, bucketRemotes} {
			if err := deleteWhere(tx.Bucket(name), id); err != nil {
				return err
			}
		}
		// Remove the blob inside the transaction: if it fails, the row
		// stays, and a blob without a row is never used.
		if err := os.Remove(s.blobPath(id)); err != nil && !os.IsNotExist(err) {
			return err
		}
		// Only succeeds when empty; imports make it again under this lock.
		os.Remove(filepath.Dir(s.blobPath(id)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	return nil
}

// deleteWhere removes the rows of b whose JSON value names imageID.
func deleteWhere(b *bolt.Bucket, imageID string) error {
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var row struct {
			ImageID string `json:"imageID"`
		}
		if json.Unmarshal(v, &row) == nil && row.ImageID == imageID {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Remote returns what was recorded about url, or ErrNotFound.
func (s *Store) Remote(url string) (Remote, error) {
	var r Remote
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketRemotes)
		var v []byte
		if b != nil {
			v = b.Get([]byte(url))
		}
		if v == nil {
			return fmt.Errorf("remote %s: %w", url, ErrNotFound)
		}
		return json.Unmarshal(v, &r)
	})
	if err == nil {
		// A remote whose image was removed since is no use.
		if _, ierr := s.Info(r.ImageID); ierr != nil {
			return Remote{}, fmt.Errorf("remote %s: %w", url, ErrNotFound)
		}
	}
	return r, err
}

// SetRemote records (or replaces) the HTTP metadata of r.URL. The image
// must already be in the store.
func (s *Store) SetRemote(r Remote) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, err := getImage(tx, r.ImageID); err != nil {
			return fmt.Errorf("set remote %s: %w", r.URL, err)
		}
		return putRemote(tx, r)
	})
}

func putRemote(tx *bolt.Tx, r Remote) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketRemotes).Put([]byte(r.URL), v)
}
