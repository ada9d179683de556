package main

import (
	"fmt"
	"os"
	"time"

	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	registerImage(func() *cobra.Command {
		var grace time.Duration
		cmd := &cobra.Command{
			Use:   "gc",
			Short: "Remove rendered trees no pod uses, and images not used within the grace period",
			Long: `Garbage-collect the store:
- rendered trees that no pod (in any state) references;
- images not used (fetched, rendered or run) within --grace-period, unless a
  pod still references a tree built from them or a kept image depends on
  them;
- leftovers of interrupted imports, renders and removals.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runImageGC(grace) },
		}
		cmd.Flags().DurationVar(&grace, "grace-period", 24*time.Hour, "how long since an image was last used before it is removed")
		return cmd
	})
}

func runImageGC(grace time.Duration) error {
	s, err := openStore()
	if err != nil {
		return err
	}
	used, err := podTreeRefs(globals.Dir)
	if err != nil {
		return err
	}
	trees, err := s.Trees()
	if err != nil {
		return err
	}
	// Images a pod's tree contains stay, whatever their age.
	pinned := map[string]bool{}
	for _, t := range trees {
		if used[t.ID] {
			for _, id := range t.Images {
				pinned[id] = true
			}
			continue
		}
		if err := s.RemoveTree(t.ID); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "rkt: removed treestore %q\n", t.ID)
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	now := time.Now()
	keep := map[string]bool{}
	for _, img := range imgs {
		if pinned[img.ID] || now.Sub(img.LastUsed) <= grace {
			keep[img.ID] = true
		}
	}
	// What a kept image needs to render stays too, however old.
	for id := range keep {
		deps, err := s.Dependencies(id)
		if err != nil {
			continue // a dependency already missing: nothing to protect
		}
		for _, d := range deps {
			keep[d] = true
		}
	}
	removed := 0
	for _, img := range imgs {
		if keep[img.ID] {
			continue
		}
		if err := s.RemoveImage(img.ID); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "rkt: successfully removed aci for image: %q (%q)\n", img.ID, img.Name)
		removed++
	}
	if err := s.CleanLeftovers(store.DefaultLeftoverAge); err != nil {
		return err
	}
	if removed > 0 {
		fmt.Fprintf(os.Stderr, "rkt: %d image(s) successfully removed\n", removed)
	}
	return nil
}
