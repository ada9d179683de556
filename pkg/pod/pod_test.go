package pod

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rktng/rkt/pkg/lock"
)

func mkpod(t *testing.T, dataDir string, s State, uuid string) string {
	t.Helper()
	d := Dir(dataDir, s, uuid)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenByPrefix(t *testing.T) {
	dir := t.TempDir()
	a := "11111111-2222-4333-8444-555555555555"
	b := "11112222-2222-4333-8444-555555555555"
	mkpod(t, dir, Run, a)
	mkpod(t, dir, Prepared, b)
	for _, c := range []struct {
		ref, want string
		err       error
	}{
		{a, a, nil}, {"111111", a, nil}, {"11112", b, nil},
		{"1111", "", ErrAmbiguous}, {"9999", "", ErrNotFound}, {"", "", ErrNotFound},
	} {
		p, err := Open(dir, c.ref)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Open(%q) = %v, want %v", c.ref, err, c.err)
			}
			continue
		}
		if err != nil || p.UUID != c.want {
			t.Errorf("Open(%q) = %v, %v; want %s", c.ref, p, err, c.want)
		}
	}
	p, _ := Open(dir, "11112")
	if p.State != Prepared || p.Status() != StatusPrepared {
		t.Errorf("prepared pod: %s %s", p.State, p.Status())
	}
}

// The status of a pod in run/ depends on whether its lock is held.
func TestStatusFollowsLock(t *testing.T) {
	dir := t.TempDir()
	uuid := "aaaaaaaa-2222-4333-8444-555555555555"
	d := mkpod(t, dir, Run, uuid)
	p, err := Open(dir, uuid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status() != StatusExited {
		t.Fatalf("unlocked run pod: %s", p.Status())
	}
	l, err := lock.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TryExclusive(); err != nil {
		t.Fatal(err)
	}
	if p.Status() != StatusRunning {
		t.Fatalf("locked run pod: %s", p.Status())
	}
	l.Close()
	if p.Status() != StatusExited {
		t.Fatalf("released run pod: %s", p.Status())
	}
	mkpod(t, dir, Preparing, "bbbbbbbb-2222-4333-8444-555555555555")
	q, _ := Open(dir, "bbbb")
	if q.Status() != StatusAbortedPrepare {
		t.Fatalf("unlocked prepare: %s", q.Status())
	}
}

func TestExitCodeFromOverlayUpper(t *testing.T) {
	dir := t.TempDir()
	uuid := "cccccccc-2222-4333-8444-555555555555"
	d := mkpod(t, dir, Run, uuid)
	write := func(name, data string) {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(Stage1TreeIDFile, "deps-sha512-x")
	write(OverlayPrepared, "")
	write("overlay/deps-sha512-x/upper/rkt/status/app", "42")
	p, _ := Open(dir, uuid)
	if code, err := p.AppExitCode("app"); err != nil || code != 42 {
		t.Fatalf("AppExitCode = %d, %v", code, err)
	}
	if _, err := p.AppExitCode("other"); err == nil {
		t.Fatal("exit code of an app that never exited")
	}
}

func TestLockHolder(t *testing.T) {
	dir := t.TempDir()
	uuid := "dddddddd-2222-4333-8444-555555555555"
	d := mkpod(t, dir, Run, uuid)
	p, _ := Open(dir, uuid)
	if _, err := p.LockHolder(); err == nil {
		t.Fatal("holder of an unlocked pod")
	}
	l, err := lock.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.TryExclusive(); err != nil {
		t.Fatal(err)
	}
	if pid, err := p.LockHolder(); err != nil || pid != os.Getpid() {
		t.Fatalf("LockHolder = %d, %v; want %d", pid, err, os.Getpid())
	}
}
