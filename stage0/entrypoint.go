package stage0

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// enterPodNamespace moves the calling thread (locked by the caller, and
// never unlocked: the thread dies with its goroutine) into the mount
// namespace holding the pod's mounts, the one stage0 made before it
// exec'd stage1, so that stage1/rootfs is the mounted stage1 root.
func enterPodNamespace(p *pod.Pod) error {
	pid, err := p.NamespacePid()
	if err != nil {
		return fmt.Errorf("pod %s has no process: %w", p.UUID, err)
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pod %s: mount namespace of pid %d: %w", p.UUID, pid, err)
	}
	defer unix.Close(fd)
	// setns into a mount namespace needs an unshared fs struct.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("pod %s: enter mount namespace: %w", p.UUID, err)
	}
	return nil
}

// podEntrypoint returns where entrypoint name sits in the stage1 rootfs
// of the pod in podDir, as its stage1 manifest says.
func podEntrypoint(podDir, name string) (string, error) {
	s1m, err := readStage1Manifest(podDir)
	if err != nil {
		return "", err
	}
	return Entrypoint(s1m, name)
}

// ExecEntrypoint replaces this process with stage1 entrypoint name of a
// running pod (enter), inside the pod's mount namespace with the pod
// directory as working directory. It returns only on failure.
func ExecEntrypoint(p *pod.Pod, name string, args []string) error {
	entry, err := podEntrypoint(p.Dir, name)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	if err := enterPodNamespace(p); err != nil {
		return err
	}
	if err := unix.Chdir(p.Dir); err != nil {
		return err
	}
	path := filepath.Join(pod.Stage1RootfsPath(p.Dir), entry)
	err = unix.Exec(path, append([]string{entry}, args...), os.Environ())
	return fmt.Errorf("exec stage1 %s: %w", path, err)
}

// RunEntrypoint runs stage1 entrypoint name of a running pod (stop) in
// the pod's mount namespace and waits for it.
func RunEntrypoint(p *pod.Pod, name string, args []string) error {
	entry, err := podEntrypoint(p.Dir, name)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread leaves with us
		if err := enterPodNamespace(p); err != nil {
			errc <- err
			return
		}
		errc <- runCmd(p.Dir, entry, args)
	}()
	return <-errc
}

func runCmd(podDir, entry string, args []string) error {
	return runCmdTo(podDir, entry, args, os.Stderr)
}

// runCmdTo runs entrypoint entry with its stderr going to stderr.
func runCmdTo(podDir, entry string, args []string, stderr io.Writer) error {
	path := filepath.Join(pod.Stage1RootfsPath(podDir), entry)
	cmd := exec.Command(path, args...)
	cmd.Args[0] = entry
	cmd.Dir = podDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stage1 %s: %w", entry, err)
	}
	return nil
}

// lastLine is the last non-empty line of b, for an entrypoint's error.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// runGCEntrypoint runs stage1's gc for an exited pod: in a fresh private
// mount namespace with the stage1 root mounted again, so that the
// entrypoint finds its files, and nothing stays mounted afterwards.
func runGCEntrypoint(podDir, treeRoot string, args []string, debug bool) error {
	s1m, err := readStage1Manifest(podDir)
	if err != nil {
		return err
	}
	entry, err := Entrypoint(s1m, "gc")
	if err != nil {
		return nil // a stage1 without gc has nothing to clean
	}
	cfg, pm, err := RunConfigFor(podDir, treeRoot)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Stage1Rootfs); err != nil {
		return fmt.Errorf("stage1 tree of pod: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace dies with the thread
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("private mount namespace: %w", err)
			return
		}
		if _, err := MountPod(podDir, pm, cfg, false); err != nil {
			errc <- err
			return
		}
		// What the entrypoint says goes into gc's own one-line error
		// rather than beside it; --debug shows all of it.
		var msg bytes.Buffer
		var stderr io.Writer = &msg
		if debug {
			stderr = io.MultiWriter(&msg, os.Stderr)
		}
		err := runCmdTo(podDir, entry, args, stderr)
		switch {
		case err != nil && msg.Len() > 0:
			err = fmt.Errorf("stage1 %s: %s (%w)", entry, lastLine(msg.Bytes()), errors.Unwrap(err))
		case err == nil && !debug:
			_, _ = os.Stderr.Write(msg.Bytes()) // warnings of a gc that worked
		}
		errc <- err
	}()
	return <-errc
}
