package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotFound: no image (or tree, or remote) matches.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: an ID prefix matches more than one image.
	ErrAmbiguous = errors.New("ambiguous image ID prefix")
	// ErrInvalidImage: the input is not a well-formed ACI.
	ErrInvalidImage = errors.New("invalid image")
	// ErrIDMismatch: the content does not hash to the expected image ID.
	ErrIDMismatch = errors.New("image ID mismatch")
	// ErrUnsafePath: a tar entry would be written outside its target.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrLocked: the index stayed locked by another process too long.
	ErrLocked = errors.New("image index locked by another process")
	// ErrTreeCorrupt: a rendered tree no longer matches its recorded hash.
	ErrTreeCorrupt = errors.New("tree store entry corrupt")
)

// DefaultLockTimeout is how long an operation waits for the index lock
// before giving up with ErrLocked.
const DefaultLockTimeout = 30 * time.Second

// Store is the image store under DIR/cas. It keeps no database handle open
// between calls: every operation opens the index, does its work in one
// transaction and closes it, so a long fetch in one rkt process never blocks
// another process for more than a transaction.
type Store struct {
	dir string // DIR/cas
	// LockTimeout bounds the wait for the index's file lock.
	LockTimeout time.Duration
	// TrustOnDisk makes Render use an already rendered tree without
	// checking that it is still what was rendered
	// (--insecure-options=ondisk).
	TrustOnDisk bool
}

// Open makes (if needed) and opens the store under dataDir.
func Open(dataDir string) (*Store, error) {
	s := &Store{dir: filepath.Join(dataDir, "cas"), LockTimeout: DefaultLockTimeout}
	for _, d := range []string{s.dir, s.blobDir(), s.dbDir(), s.treeDir(), s.locksDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if _, err := os.Stat(s.dbPath()); errors.Is(err, os.ErrNotExist) {
		if err := s.update(func(*bolt.Tx) error { return nil }); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return s, nil
}

// Dir is DIR/cas.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobDir() string  { return filepath.Join(s.dir, "blob") }
func (s *Store) dbDir() string    { return filepath.Join(s.dir, "db") }
func (s *Store) dbPath() string   { return filepath.Join(s.dbDir(), "index.bolt") }
func (s *Store) treeDir() string  { return filepath.Join(s.dir, "tree") }
func (s *Store) locksDir() string { return filepath.Join(s.dir, "locks") }
func (s *Store) tmpDir() string   { return filepath.Join(s.dir, "tmp") }

// blobPath is blob/sha512/XX/sha512-HEX, XX being the first two hex digits.
func (s *Store) blobPath(id string) string {
	hex := id[len(idPrefix):]
	return filepath.Join(s.blobDir(), "sha512", hex[:2], id)
}

// Bucket names in the index.
var (
	bucketImages  = []byte("images")
	bucketRemotes = []byte("remotes")
	bucketFiles   = []byte("files")
	bucketTrees   = []byte("trees")
)

func (s *Store) openDB(readOnly, noSync bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.dbPath(), 0o600, &bolt.Options{Timeout: s.LockTimeout, ReadOnly: readOnly, NoGrowSync: false})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w (waited %s)", s.dbPath(), ErrLocked, s.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", s.dbPath(), err)
	}
	db.NoSync = noSync
	return db, nil
}

// view runs fn in a read transaction on a freshly opened index.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	db, err := s.openDB(true, false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

// update runs fn in a write transaction, creating the buckets first.
func (s *Store) update(fn func(tx *bolt.Tx) error) error { return s.updateSync(true, fn) }

func (s *Store) updateSync(sync bool, fn func(tx *bolt.Tx) error) error {
	db, err := s.openDB(false, !sync)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRemotes, bucketFiles, bucketTrees} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

// bucket returns the named bucket, or nil when a read-only transaction runs
// on an index no writer has initialised yet.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return tx.Bucket(name) }
