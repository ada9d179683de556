package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain doubles as a helper process: with RKT_STORE_HELPER=DIR:ACI the
// test binary imports and renders ACI into the store at DIR and prints the
// tree ID, so tests can run real concurrent processes on one store.
func TestMain(m *testing.M) {
	if arg := os.Getenv("RKT_STORE_HELPER"); arg != "" {
		dir, aci, _ := strings.Cut(arg, ":")
		s, err := Open(dir)
		if err == nil {
			var info ImageInfo
			if info, err = s.ImportFile(context.Background(), aci, ImportOptions{}); err == nil {
				var tree Tree
				if tree, err = s.Render(context.Background(), info.ID); err == nil {
					fmt.Println(tree.ID)
					os.Exit(0)
				}
			}
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestConcurrentProcesses(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	aci := filepath.Join(t.TempDir(), "c.aci")
	body := strings.Repeat("two processes ", 1<<18)
	os.WriteFile(aci, gzipBytes(t, makeTar(t, manifestJSON("example.com/procs", nil, nil, nil),
		file("rootfs/a", body), file("rootfs/b", body))), 0o644)
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "RKT_STORE_HELPER="+dir+":"+aci)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v: %s", i, err, outs[i])
		}
	}
	if outs[0].String() != outs[1].String() {
		t.Fatalf("different trees: %q %q", outs[0], outs[1])
	}
	s, _ := Open(dir)
	imgs, _ := s.List()
	blobs, _ := filepath.Glob(filepath.Join(s.blobDir(), "sha512", "*", "*"))
	trees, _ := os.ReadDir(s.treeDir())
	tmps, _ := os.ReadDir(s.tmpDir())
	locks, _ := os.ReadDir(s.locksDir())
	if len(imgs) != 1 || len(blobs) != 1 || len(trees) != 1 || len(tmps) != 0 || len(locks) != 0 {
		t.Errorf("images %d blobs %d trees %d temp files %d lock files %d, want 1 1 1 0 0", len(imgs), len(blobs), len(trees), len(tmps), len(locks))
	}
	if err := s.VerifyTree(strings.TrimSpace(outs[0].String())); err != nil {
		t.Error(err)
	}
}
