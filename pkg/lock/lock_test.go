package lock

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestExclusiveExcludesShared(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Join(dir, "f.lock")} {
		a, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.TryExclusive(); err != nil {
			t.Fatalf("%s: first exclusive: %v", p, err)
		}
		if err := b.TryShared(); !errors.Is(err, ErrLocked) {
			t.Fatalf("%s: shared while exclusive held: got %v, want ErrLocked", p, err)
		}
		if err := a.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := b.TryShared(); err != nil {
			t.Fatalf("%s: shared after unlock: %v", p, err)
		}
		a.Close()
		b.Close()
	}
}
