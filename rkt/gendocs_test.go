//go:build gendocs

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenManPages(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if err := genManPages(newRootCommand(), dir); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"rkt.1", "rkt-config.1", "rkt-version.1", "rkt-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("missing page: %v", err)
			continue
		}
		if !strings.Contains(string(b), ".TH ") || !strings.Contains(string(b), "Nov 2023") {
			t.Errorf("%s has no .TH header with the SOURCE_DATE_EPOCH date:\n%.300s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rkt-gen-docs.1")); err == nil {
		t.Error("the hidden generator documented itself")
	}
	home, _ := os.UserHomeDir()
	b, _ := os.ReadFile(filepath.Join(dir, "rkt.1"))
	if home != "" && home != "/" && strings.Contains(string(b), home) {
		t.Errorf("rkt.1 mentions the builder's home %s", home)
	}
}
