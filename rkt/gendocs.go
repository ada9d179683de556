//go:build gendocs

package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// gen-docs writes the man pages of the whole command tree at build time
// (make dist), so that they never drift from the flags. It is only in a
// build with the gendocs tag (build/tools/rkt-gendocs): the man page
// renderer it links cost every rkt command half a millisecond of package
// initialisation.
func init() {
	register(func() *cobra.Command {
		var manDir string
		cmd := &cobra.Command{
			Use:    "gen-docs --man DIR",
			Short:  "Write the man pages of every command (for packaging)",
			Hidden: true,
			Args:   cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if manDir == "" {
					return fmt.Errorf("gen-docs: --man DIR is required")
				}
				return genManPages(cmd.Root(), manDir)
			},
		}
		cmd.Flags().StringVar(&manDir, "man", "", "directory to write section 1 man pages into")
		return cmd
	})
}

func genManPages(root *cobra.Command, dir string) error {
	// Reproducible pages: the date comes from SOURCE_DATE_EPOCH (the last
	// commit, set by make), never from the clock.
	date := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("gen-docs: SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	// The builder's home directory is not the user's.
	if f := root.PersistentFlags().Lookup("user-config"); f != nil {
		f.DefValue = "$HOME/.config/rkt"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen-docs: %w", err)
	}
	root.DisableAutoGenTag = true
	// Execute adds `completion` lazily; the pages should cover it either way.
	root.InitDefaultCompletionCmd()
	// Title stays empty so that each page is titled by its own command.
	header := &doc.GenManHeader{
		Section: "1",
		Source:  "rkt " + version,
		Manual:  "rkt manual",
		Date:    &date,
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("gen-docs: %w", err)
	}
	return nil
}
