package podmount

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// An overlay for a pod in a user namespace: the store's files (root's on
// the host) are the namespace root's through it, the overlay's root is
// too, and nothing of the lower tree changes.
func TestOverlayInUserNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 210000, Size: 65536}},
		GidMappingsEnableSetgroups: true}
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if ns, err := OwnUserNS(os.Getpid()); err != nil || ns != nil {
		t.Fatalf("own process: %+v %v, want none", ns, err)
	}
	ns, err := OwnUserNS(cmd.Process.Pid)
	if err != nil || ns == nil || ns.RootUID != 200000 || ns.RootGID != 210000 {
		t.Fatalf("OwnUserNS: %+v %v", ns, err)
	}
	dir := t.TempDir()
	lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{lower, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mfd, err := OverlayInUserNS(lower, upper, work, ns)
	if err != nil {
		if errorsIsUnsupported(err) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	for _, name := range []string{"f", "."} {
		var st unix.Stat_t
		if err := unix.Fstatat(mfd, name, &st, 0); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 200000 || st.Gid != 210000 {
			t.Errorf("%s through the overlay: %d:%d, want the namespace's root 200000:210000", name, st.Uid, st.Gid)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(lower, "f"), &st); err != nil || st.Uid != 0 {
		t.Errorf("the lower file changed owner: %d %v", st.Uid, err)
	}
}

// errorsIsUnsupported: a kernel without idmapped mounts (before 5.12) or
// overlayfs on them (5.19).
func errorsIsUnsupported(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL)
}
