package stage0

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/cgroup"
	"github.com/rktng/rkt/pkg/lock"
	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// GCConfig says what `rkt gc` collects.
type GCConfig struct {
	DataDir string
	// TreeRoot is the store's tree directory (DIR/cas/tree).
	TreeRoot string
	// GracePeriod: how long an exited pod stays in exited-garbage.
	GracePeriod time.Duration
	// ExpirePrepared: how long a prepared pod may wait to be run.
	ExpirePrepared time.Duration
	// MarkOnly moves pods to the garbage directories but deletes nothing.
	MarkOnly    bool
	Debug       bool
	LocalConfig string
	// Log receives one line per pod acted on.
	Log io.Writer
	// Warn receives what went wrong with a pod that was removed all the
	// same.
	Warn io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c *GCConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ErrStage1GC: the stage1's gc entrypoint failed for a pod.
var ErrStage1GC = errors.New("stage1 gc failed")

const (
	// gcMaxFailures is how many gc runs may fail on a pod before it is
	// removed regardless.
	gcMaxFailures = 3
	gcRetryPause  = 300 * time.Millisecond
	// gcFailuresFile, in the pod directory, counts failed stage1 gc runs.
	gcFailuresFile = "gc-failures"
)

// countGCFailure records one more failed stage1 gc of the pod in podDir
// and returns how many there have been.
func countGCFailure(podDir string) int {
	path := filepath.Join(podDir, gcFailuresFile)
	n := 0
	if b, err := os.ReadFile(path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	_ = os.WriteFile(path, []byte(strconv.Itoa(n)+"\n"), 0o644)
	return n
}

// embryoMinAge spares embryo pods younger than this: between a new pod's
// mkdir and its lock there is a moment when it looks abandoned.
const embryoMinAge = time.Second

// GC marks exited and abandoned pods as garbage and, past their grace
// period, runs stage1's gc on them and removes them.
func GC(ctx context.Context, cfg GCConfig) error {
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	var errs []error
	// Mark: exited pods, abandoned embryos and prepares, expired prepared.
	pods, err := pod.List(cfg.DataDir, pod.Run, pod.Embryo, pod.Preparing, pod.Prepared)
	if err != nil {
		return err
	}
	now := cfg.now()
	for _, p := range pods {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var to pod.State
		switch p.State {
		case pod.Run:
			to = pod.ExitedGarbage
		case pod.Embryo:
			if age(p.Dir, now) < embryoMinAge {
				continue
			}
			to = pod.Garbage
		case pod.Preparing:
			to = pod.Garbage
		case pod.Prepared:
			if age(p.Path(pod.CreatedFile), now) < cfg.ExpirePrepared {
				continue
			}
			to = pod.Garbage
		}
		l, err := lock.Open(p.Dir)
		if err != nil {
			continue // moved meanwhile
		}
		if err := l.TryExclusive(); err != nil {
			l.Close()
			continue // running, preparing or being collected
		}
		if err := os.Rename(p.Dir, pod.Dir(cfg.DataDir, to, p.UUID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("mark pod %s: %w", p.UUID, err))
		} else if err == nil {
			fmt.Fprintf(log, "Moving pod %q to garbage\n", p.UUID)
		}
		l.Close()
	}
	if cfg.MarkOnly {
		return errors.Join(errs...)
	}
	// Sweep: past the grace period (counted from the rename into
	// exited-garbage, the directory's ctime), and unlocked.
	garbage, err := pod.List(cfg.DataDir, pod.ExitedGarbage, pod.Garbage)
	if err != nil {
		return err
	}
	for _, p := range garbage {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The grace period counts from the rename the mark phase may
		// just have made: measured against a clock read before it, a
		// pod marked a moment ago had a negative age, and with
		// --grace-period=0 was left until the next gc whenever marking
		// took longer than the file system's clock tick (a busy host).
		if p.State == pod.ExitedGarbage && cfg.GracePeriod > 0 && ctimeAge(p.Dir, cfg.now()) < cfg.GracePeriod {
			continue
		}
		if err := collect(p, cfg); errors.Is(err, errNotCollected) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(log, "Garbage collecting pod %q\n", p.UUID)
	}
	return errors.Join(errs...)
}

// errNotCollected: another gc got to the pod first.
var errNotCollected = errors.New("pod not collected")

func collect(p *pod.Pod, cfg GCConfig) error {
	l, err := lock.Open(p.Dir)
	if err != nil {
		return errNotCollected // gone meanwhile
	}
	defer l.Close()
	if err := l.TryExclusive(); err != nil {
		return errNotCollected // another gc holds it
	}
	if p.State == pod.ExitedGarbage {
		args := []string{}
		if cfg.Debug {
			args = append(args, "--debug")
		}
		if cfg.LocalConfig != "" {
			args = append(args, "--local-config="+cfg.LocalConfig)
		}
		args = append(args, p.UUID)
		err := runGCEntrypoint(p.Dir, cfg.TreeRoot, args, cfg.Debug)
		if err != nil {
			// Once more after a pause: what a pod killed a moment ago
			// leaves (processes still exiting, a busy xtables lock)
			// usually clears by then.
			time.Sleep(gcRetryPause)
			err = runGCEntrypoint(p.Dir, cfg.TreeRoot, args, cfg.Debug)
		}
		if err != nil {
			// The pod directory holds the only record of the pod's
			// network leases, namespace and cgroups: removing it after a
			// failed stage1 gc would leak them for good. It stays for the
			// next gc, but a stage1 whose gc always fails must not pin
			// it forever.
			n := countGCFailure(p.Dir)
			if n < gcMaxFailures {
				return fmt.Errorf("pod %s: %w: %v (kept for the next gc, failure %d of %d)", p.UUID, ErrStage1GC, err, n, gcMaxFailures)
			}
			if cfg.Warn != nil {
				fmt.Fprintf(cfg.Warn, "pod %s: %v: %v (failure %d of %d: removing it anyway; its network or cgroups may be left)\n", p.UUID, ErrStage1GC, err, n, gcMaxFailures)
			}
		}
	}
	// Cgroups a stage1 made for the pod's resource limits (pkg/cgroup
	// records them in the pod directory), whatever its own gc did.
	if err := cgroup.RemovePod(p.Dir); err != nil && cfg.Warn != nil {
		fmt.Fprintf(cfg.Warn, "pod %s: %v\n", p.UUID, err)
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("remove pod %s: %w", p.UUID, err)
	}
	return nil
}

// Remove deletes an exited or prepared pod now (rkt rm): it moves it to
// garbage, runs stage1's gc when it had run, and removes it.
func Remove(p *pod.Pod, cfg GCConfig) error {
	l, err := lock.Open(p.Dir)
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	if err := l.TryExclusive(); err != nil {
		l.Close()
		return fmt.Errorf("pod %s is %s: stop it first", p.UUID, p.Status())
	}
	to := pod.Garbage
	if p.State == pod.Run || p.State == pod.ExitedGarbage {
		to = pod.ExitedGarbage
	}
	if p.State != to {
		dst := pod.Dir(cfg.DataDir, to, p.UUID)
		if err := os.Rename(p.Dir, dst); err != nil {
			l.Close()
			return fmt.Errorf("pod %s: %w", p.UUID, err)
		}
		p.Dir, p.State = dst, to
	}
	l.Close()
	if err := collect(p, cfg); !errors.Is(err, errNotCollected) {
		return err
	}
	return nil // a gc is removing it
}

func age(path string, now time.Time) time.Duration {
	fi, err := os.Stat(path)
	if err != nil {
		return 1 << 62
	}
	return now.Sub(fi.ModTime())
}

func ctimeAge(path string, now time.Time) time.Duration {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 1 << 62
	}
	return now.Sub(time.Unix(st.Ctim.Unix()))
}
