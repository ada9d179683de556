package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Build-time settings, set by the Makefile with -ldflags -X.
var (
	version = "0.0.0-dev"
	// defaultStage1Images is a colon-separated list of stage1 ACI paths, the
	// first being the default (stage1 with systemd-nspawn).
	defaultStage1Image    = "/usr/lib/rkt/stage1-images/stage1.aci"
	defaultStage1FlyImage = "/usr/lib/rkt/stage1-images/stage1-fly.aci"
)

// globalConfig holds the flags every command shares.
type globalConfig struct {
	Dir                string
	LocalConfig        string
	SystemConfig       string
	UserConfig         string
	Debug              bool
	TrustKeysFromHTTPS bool
	Insecure           insecureOptions
}

var globals = globalConfig{}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "rkt",
		Short:         "rkt, the pod-native container engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Commands are registered by init functions in their own files.
	}
	home, _ := os.UserHomeDir()
	pf := root.PersistentFlags()
	pf.StringVar(&globals.Dir, "dir", "/var/lib/rkt", "rkt data directory")
	pf.StringVar(&globals.LocalConfig, "local-config", "/etc/rkt", "local configuration directory")
	pf.StringVar(&globals.SystemConfig, "system-config", "/usr/lib/rkt", "system configuration directory")
	pf.StringVar(&globals.UserConfig, "user-config", filepath.Join(home, ".config", "rkt"), "user configuration directory")
	pf.BoolVar(&globals.Debug, "debug", false, "print out more debug information to stderr")
	pf.BoolVar(&globals.TrustKeysFromHTTPS, "trust-keys-from-https", false, "automatically trust gpg keys fetched from https")
	pf.Var(&globals.Insecure, "insecure-options", "comma-separated list of security features to disable: "+insecureOptionNames())
	for _, add := range commands {
		root.AddCommand(add())
	}
	addCompletions(root)
	// paths.d's data directory applies unless --dir was given, as in rkt.
	// A broken configuration is left for the commands that read it to report.
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if f := cmd.Flag("dir"); f != nil && !f.Changed {
			if c, err := loadConfig(); err == nil && c.Paths.Data != "" {
				globals.Dir = c.Paths.Data
			}
		}
	}
	return root
}

// commands collects the constructors registered by each command's file.
var commands []func() *cobra.Command

// register adds a top-level command; call it from an init function.
func register(newCmd func() *cobra.Command) { commands = append(commands, newCmd) }
