package main

import (
	"encoding/json"
	"path/filepath"

	"github.com/rktng/rkt/pkg/config"
	"github.com/spf13/cobra"
)

// loadConfig reads the configuration directories named by the global flags.
func loadConfig() (*config.Config, error) {
	return config.Load(config.Dirs{
		System: globals.SystemConfig,
		Local:  globals.LocalConfig,
		User:   globals.UserConfig,
	})
}

// effectiveDataDir is the data directory a command should use: --dir when
// given on the command line, else paths.d's data, else --dir's default.
func effectiveDataDir(cmd *cobra.Command, c *config.Config) string {
	if f := cmd.Flags().Lookup("dir"); f != nil && f.Changed {
		return globals.Dir
	}
	if c.Paths.Data != "" {
		return c.Paths.Data
	}
	return globals.Dir
}

// effectiveConfig fills in what rkt would use where the files say nothing:
// the data directory and the build-time stage1 image.
func effectiveConfig(cmd *cobra.Command, c *config.Config) *config.Config {
	e := *c
	e.Paths.Data = effectiveDataDir(cmd, c)
	if e.Paths.Stage1Images == "" {
		e.Paths.Stage1Images = filepath.Dir(defaultStage1Image)
	}
	if e.Stage1.Location == "" {
		e.Stage1.Location = defaultStage1Image
	}
	return &e
}

func init() {
	register(func() *cobra.Command {
		return &cobra.Command{
			Use:   "config",
			Short: "Print the merged configuration of rkt's configuration directories as JSON",
			Long: `Print the configuration rkt uses, merged from --system-config, --local-config
and --user-config (later directories override earlier ones), as rkt's own
configuration entries under "stage0": one auth entry per domain, one
dockerAuth entry per registry, then paths and stage1 with the built-in
defaults filled in. Credentials are printed in full.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := loadConfig()
				if err != nil {
					return err
				}
				entries := effectiveConfig(cmd, c).Entries()
				if entries == nil {
					entries = []any{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"stage0": entries})
			},
		}
	})
}
