package stage0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"github.com/rktng/rkt/pkg/pod"
)

// AnnotationLogs, on a stage1 image, names its logs entrypoint. It is ours,
// not rkt's (whose stage0 read the nspawn stage1's journal itself): how a
// pod's output is kept is the stage1's business, so `rkt logs` asks the
// pod's own stage1. See stage1.LogsEntrypoint for its arguments.
const AnnotationLogs = "rktng.io/rkt/stage1/logs"

// exitNoLogs is the logs entrypoint's exit status for a pod that has no
// logs (yet).
const exitNoLogs = 3

// ErrNoLogs: the pod's stage1 keeps no logs (it has no logs entrypoint, as
// the fly stage1, whose apps write to rkt's own output), or the pod has
// none yet (it never started).
var ErrNoLogs = errors.New("no logs")

// LogsConfig is what `rkt logs` asks of a pod.
type LogsConfig struct {
	// TreeRoot is the store's tree directory, where the pod's stage1 tree
	// is (the entrypoint runs from there, for an exited pod as well).
	TreeRoot string
	// Apps are the apps whose output is wanted (at least one).
	Apps []string
	// Prefix puts "[APP] " (journalctl's short output) before each line.
	Prefix bool
	Follow bool
	// Lines limits the output to the last N records; 0 means all.
	Lines int
	// Output is a journalctl output mode; AfterCursor a journal cursor to
	// start after.
	Output, AfterCursor string
	Stdout, Stderr      io.Writer
}

// Logs runs the pod's stage1 logs entrypoint and waits for it (with
// Follow, until ctx ends or the pod's journal does). The entrypoint prints
// to cfg.Stdout and its own failures to cfg.Stderr.
func Logs(ctx context.Context, p *pod.Pod, cfg LogsConfig) error {
	s1m, err := readStage1Manifest(p.Dir)
	if err != nil {
		return err
	}
	entry, ok := s1m.Annotations.Get(AnnotationLogs)
	if !ok || entry == "" {
		return fmt.Errorf("%w: stage1 %s keeps none", ErrNoLogs, s1m.Name)
	}
	rc, _, err := RunConfigFor(p.Dir, cfg.TreeRoot)
	if err != nil {
		return err
	}
	var args []string
	if cfg.Prefix {
		args = append(args, "--prefix")
	}
	if cfg.Follow {
		args = append(args, "--follow")
	}
	if cfg.Lines > 0 {
		args = append(args, "--lines="+strconv.Itoa(cfg.Lines))
	}
	if cfg.Output != "" {
		args = append(args, "--output="+cfg.Output)
	}
	if cfg.AfterCursor != "" {
		args = append(args, "--after-cursor="+cfg.AfterCursor)
	}
	args = append(args, cfg.Apps...)
	cmd := exec.CommandContext(ctx, filepath.Join(rc.Stage1Rootfs, entry), args...)
	cmd.Args[0] = entry
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr
	// The entrypoint (and a journalctl --follow under it) dies with rkt
	// logs, however that ends. The parent-death signal fires when the
	// thread that started it exits: keep this one until the end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == exitNoLogs:
		return fmt.Errorf("%w yet: it never started", ErrNoLogs)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("stage1 tree of pod %s: %w", p.UUID, err)
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("stage1 %s: %w", entry, err)
	}
	return nil
}
