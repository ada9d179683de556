package store

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultLeftoverAge is how old a temp file or directory must be before
// CleanLeftovers takes it for the remains of an interrupted operation
// rather than one still running.
const DefaultLeftoverAge = time.Hour

// CleanLeftovers removes what crashed or killed operations left: temp
// files in cas/tmp, half-rendered and half-removed trees, trees that never
// got their rendered marker, lock files nobody holds, and blobs without an
// index row.
func (s *Store) CleanLeftovers(minAge time.Duration) error {
	cutoff := time.Now().Add(-minAge)
	old := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.ModTime().Before(cutoff)
	}
	if ents, err := os.ReadDir(s.tmpDir()); err == nil {
		for _, e := range ents {
			if p := filepath.Join(s.tmpDir(), e.Name()); old(p) {
				os.RemoveAll(p)
			}
		}
	}
	if ents, err := os.ReadDir(s.treeDir()); err == nil {
		for _, e := range ents {
			p := filepath.Join(s.treeDir(), e.Name())
			switch {
			case strings.HasPrefix(e.Name(), ".remove-"):
				os.RemoveAll(p)
			case strings.HasPrefix(e.Name(), ".render-") && old(p):
				os.RemoveAll(p)
			case validTreeID(e.Name()) && !rendered(p) && old(p):
				os.RemoveAll(p)
			}
		}
	}
	s.cleanLockFiles()
	// Blobs appear and vanish only under the index's write lock, so
	// holding it makes "no row" mean orphaned, not "being imported".
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		return filepath.WalkDir(filepath.Join(s.blobDir(), "sha512"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b.Get([]byte(d.Name())) == nil {
				os.Remove(p)
			}
			return nil
		})
	})
}
