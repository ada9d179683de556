package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

// imageCommands collects the `rkt image` subcommands, each registered from
// its own image_*.go file.
var imageCommands []func() *cobra.Command

func registerImage(newCmd func() *cobra.Command) { imageCommands = append(imageCommands, newCmd) }

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "image",
			Short: "Operate on images in the local store",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		}
		for _, add := range imageCommands {
			cmd.AddCommand(add())
		}
		return cmd
	})
}

func openStore() (*store.Store, error) {
	return store.Open(globals.Dir)
}

// resolveStored turns an image argument (ID prefix, name[:version] or
// name,label=value...) into the full ID of a stored image.
func resolveStored(s *store.Store, ref string) (string, error) {
	id, err := s.Resolve(ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("no image %q in the store", ref)
	}
	if errors.Is(err, store.ErrAmbiguous) {
		return "", fmt.Errorf("image ID %q is ambiguous: give more digits", ref)
	}
	return id, err
}

// openStoredImage opens the store and resolves the one image a command
// works on.
func openStoredImage(ref string) (*store.Store, string, error) {
	s, err := openStore()
	if err != nil {
		return nil, "", err
	}
	id, err := resolveStored(s, ref)
	if err != nil {
		return nil, "", err
	}
	return s, id, nil
}

// podTreeRefs reads which trees the pods under DIR/pods use: each app's
// appsinfo/APP/treeStoreID and the pod's stage1TreeStoreID, in every state.
func podTreeRefs(dataDir string) (map[string]bool, error) {
	refs := map[string]bool{}
	for _, st := range pod.States {
		pods, err := os.ReadDir(pod.StateDir(dataDir, st))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, p := range pods {
			dir := pod.Dir(dataDir, st, p.Name())
			files := []string{filepath.Join(dir, pod.Stage1TreeIDFile)}
			apps, _ := os.ReadDir(filepath.Join(dir, "appsinfo"))
			for _, a := range apps {
				files = append(files, pod.AppTreeStoreIDPath(dir, a.Name()))
			}
			for _, f := range files {
				if b, err := os.ReadFile(f); err == nil {
					refs[strings.TrimSpace(string(b))] = true
				}
			}
		}
	}
	return refs, nil
}

// imageTrees maps each image ID to the trees that contain it.
func imageTrees(s *store.Store) (map[string][]store.Tree, error) {
	trees, err := s.Trees()
	if err != nil {
		return nil, err
	}
	m := map[string][]store.Tree{}
	for _, t := range trees {
		for _, id := range t.Images {
			m[id] = append(m[id], t)
		}
	}
	return m, nil
}

// humanSize prints a byte count as rkt did: binary units, no space.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit {
			if f < 10 {
				return fmt.Sprintf("%.1f%s", f, u)
			}
			return fmt.Sprintf("%.0f%s", f, u)
		}
	}
	return fmt.Sprintf("%.0fPiB", f/unit)
}

// humanAgo prints how long ago t was: "3 minutes ago".
func humanAgo(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	plural := func(n int64, what string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s ago", what)
		}
		return fmt.Sprintf("%d %ss ago", n, what)
	}
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	case d < 30*24*time.Hour:
		return plural(int64(d/(24*time.Hour)), "day")
	case d < 365*24*time.Hour:
		return plural(int64(d/(30*24*time.Hour)), "month")
	}
	return plural(int64(d/(365*24*time.Hour)), "year")
}

const fullTimeLayout = "2006-01-02 15:04:05.999 -0700 MST"

// barProgress draws one self-overwriting line on stderr while long image
// work runs, and only when stderr is a terminal.
type barProgress struct {
	label string
	last  time.Time
	shown bool
}

// newBarProgress returns nil (no progress) unless stderr is a TTY.
func newBarProgress(label string) *barProgress {
	if !isTerminal(os.Stderr) {
		return nil
	}
	return &barProgress{label: label}
}

// update redraws at most ten times a second.
func (p *barProgress) update(done, total int64) {
	if p == nil || total <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = now
	const width = 30
	fill := int(width * min(done, total) / total)
	fmt.Fprintf(os.Stderr, "\r%s [%s%s] %s / %s ", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), humanSize(done), humanSize(total))
	p.shown = true
}

// finish ends the line, if one was drawn.
func (p *barProgress) finish() {
	if p != nil && p.shown {
		fmt.Fprintln(os.Stderr)
	}
}

// callback is update as a CopyOptions.Progress, or nil.
func (p *barProgress) callback() func(done, total int64) {
	if p == nil {
		return nil
	}
	return p.update
}
