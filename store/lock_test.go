package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rktng/rkt/pkg/lock"
)

// Holders remove the lock file as they let go; the lock must still admit
// one holder at a time, a waiter on a removed file starting over.
func TestTreeLockExcludesWhileFilesComeAndGo(t *testing.T) {
	s := newStore(t)
	id := treeIDPrefix + idPrefix + "00"
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				l, err := s.lockTree(context.Background(), id)
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n > 1 {
					most.Store(n)
				}
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				s.unlockTree(l)
			}
		}()
	}
	wg.Wait()
	if most.Load() != 0 {
		t.Fatalf("%d holders of one tree lock at once", most.Load())
	}
	if ents, _ := os.ReadDir(s.locksDir()); len(ents) != 0 {
		t.Fatalf("%d lock files left", len(ents))
	}
}

func TestRenderAndRemoveLeaveNoLockFiles(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	info := mustImport(t, s, makeTar(t, manifestJSON("example.com/locks", nil, nil, nil), file("rootfs/a", "a")))
	var wg sync.WaitGroup
	trees := make([]Tree, 4)
	for i := range trees {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			if trees[i], err = s.Render(context.Background(), info.ID); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if ents, _ := os.ReadDir(s.locksDir()); len(ents) != 0 {
		t.Fatalf("%d lock files after rendering", len(ents))
	}
	if err := s.RemoveTree(trees[0].ID); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.locksDir()); len(ents) != 0 {
		t.Fatalf("%d lock files after removing the tree", len(ents))
	}
}

// Lock files a killed process (or an older store) left go at gc; one that
// is held stays.
func TestCleanLeftoversRemovesUnheldLockFiles(t *testing.T) {
	s := newStore(t)
	stale := filepath.Join(s.locksDir(), treeIDPrefix+idPrefix+"aa.lck")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := lock.Open(filepath.Join(s.locksDir(), treeIDPrefix+idPrefix+"bb.lck"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.Exclusive(); err != nil {
		t.Fatal(err)
	}
	if err := s.CleanLeftovers(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale lock file still there: %v", err)
	}
	if _, err := os.Stat(held.Path()); err != nil {
		t.Errorf("held lock file removed: %v", err)
	}
}
