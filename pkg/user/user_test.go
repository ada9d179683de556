package user

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\n# a comment\n\nuser:x:1000:1000:U:/home/user:/bin/sh\nbroken:x:notanumber:1\n"
	group := "root:x:0:\nusers:x:100:user,other\nuser:x:1000:\nwheel:x:10:root, user\ndup:x:100:user\n"
	for name, data := range map[string]string{"etc/passwd": passwd, "etc/group": group} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveNames(t *testing.T) {
	root := writeRootfs(t)
	r, err := Resolve(root, "user", "users")
	if err != nil {
		t.Fatal(err)
	}
	want := Resolved{UID: 1000, GID: 100, Home: "/home/user", SupplementaryGIDs: []int{10}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	r, err = Resolve(root, "user", "user")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.SupplementaryGIDs, []int{10, 100}) {
		t.Fatalf("supplementary groups %v", r.SupplementaryGIDs)
	}
}

func TestResolveNumbers(t *testing.T) {
	root := writeRootfs(t)
	r, err := Resolve(root, "4242", "4343")
	if err != nil {
		t.Fatal(err)
	}
	if r.UID != 4242 || r.GID != 4343 || r.Home != "" || r.SupplementaryGIDs != nil {
		t.Fatalf("got %+v", r)
	}
	// A listed number gets its home and groups.
	r, err = Resolve(root, "1000", "0")
	if err != nil {
		t.Fatal(err)
	}
	if r.Home != "/home/user" || !reflect.DeepEqual(r.SupplementaryGIDs, []int{10, 100}) {
		t.Fatalf("got %+v", r)
	}
}

func TestUnknownAndBad(t *testing.T) {
	root := writeRootfs(t)
	_, err := Resolve(root, "nobody", "0")
	if !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("want ErrUnknownUser, got %v", err)
	}
	if want := `unknown user "nobody" in /etc/passwd of the image`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if _, err := Resolve(root, "0", "nogroup"); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("want ErrUnknownGroup, got %v", err)
	}
	for _, bad := range []string{"-1", "", "4294967295", "99999999999999999999"} {
		if _, err := LookupUser(root, bad); !errors.Is(err, ErrBadID) {
			t.Errorf("user %q: want ErrBadID, got %v", bad, err)
		}
	}
	// An entry with a malformed UID is skipped, not half-parsed.
	if _, err := LookupUser(root, "broken"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("broken entry: %v", err)
	}
	// No /etc/passwd at all: names are unknown, numbers still work.
	empty := t.TempDir()
	if _, err := LookupUser(empty, "user"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("empty rootfs: %v", err)
	}
	if u, err := LookupUser(empty, "7"); err != nil || u.UID != 7 {
		t.Fatalf("empty rootfs numeric: %+v %v", u, err)
	}
}

func TestPathOwner(t *testing.T) {
	root := writeRootfs(t)
	f := filepath.Join(root, "owned")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 1000, 10); err != nil {
		t.Skipf("chown needs root: %v", err)
	}
	r, err := Resolve(root, "/owned", "/owned")
	if err != nil {
		t.Fatal(err)
	}
	if r.UID != 1000 || r.GID != 10 || r.Home != "/home/user" {
		t.Fatalf("got %+v", r)
	}
	if _, err := Resolve(root, "/missing", "0"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing path: %v", err)
	}
}

// An image whose /etc/passwd links to the host's must not read the host's.
func TestSymlinkStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("hostonly:x:5:5::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupUser(root, "hostonly"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("absolute symlink followed out of the rootfs: %v", err)
	}
	if err := os.Remove(filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../"+outside+"/passwd", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupUser(root, "hostonly"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("relative symlink followed out of the rootfs: %v", err)
	}
}
