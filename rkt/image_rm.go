package main

import (
	"fmt"
	"os"

	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	registerImage(func() *cobra.Command {
		return &cobra.Command{
			Use:   "rm IMAGE...",
			Short: "Remove images, and their rendered trees no pod uses, from the store",
			Args:  cobra.MinimumNArgs(1),
			RunE:  func(cmd *cobra.Command, args []string) error { return runImageRm(args) },
		}
	})
}

func runImageRm(refs []string) error {
	s, err := openStore()
	if err != nil {
		return err
	}
	used, err := podTreeRefs(globals.Dir)
	if err != nil {
		return err
	}
	trees, err := imageTrees(s)
	if err != nil {
		return err
	}
	removed, failed := 0, 0
	for _, ref := range refs {
		id, err := resolveStored(s, ref)
		if err == nil {
			err = removeImage(s, id, trees[id], used)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
			failed++
			continue
		}
		removed++
	}
	if removed > 0 {
		fmt.Fprintf(os.Stderr, "rkt: %d image(s) successfully removed\n", removed)
	}
	if failed > 0 {
		return exitError{code: errExitCode}
	}
	return nil
}

// removeImage removes image id and those of its trees no pod references;
// a tree a pod still uses stays (the pod runs on it, not on the blob).
func removeImage(s *store.Store, id string, trees []store.Tree, used map[string]bool) error {
	info, err := s.Info(id)
	if err != nil {
		return err
	}
	for _, t := range trees {
		if used[t.ID] {
			continue
		}
		if err := s.RemoveTree(t.ID); err != nil {
			return fmt.Errorf("remove image %s: %w", id, err)
		}
	}
	if err := s.RemoveImage(id); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "rkt: successfully removed aci for image: %q (%q)\n", id, info.Name)
	return nil
}
