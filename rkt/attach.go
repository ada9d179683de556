package main

import (
	"fmt"

	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var cfg stage0.AttachConfig
		cmd := &cobra.Command{
			Use:   "attach [--app=NAME] [--mode=auto|list|ENDPOINTS] UUID",
			Short: "Attach to the terminal or the standard streams of a running app",
			Long: `Attach to the terminal or the standard streams of a running app.

An app is attachable when it was added with --stdin, --stdout or --stderr
set to stream (a pipe per stream) or tty (a terminal of its own). The
endpoints are tty, stdin, stdout and stderr: --mode=list prints those the
app has, --mode=auto (the default) attaches to all of them, and a
comma-separated list to those named. Several clients may attach at once:
all see the output, all may type.

On a terminal, attaching to a tty puts this terminal in raw mode and
passes its size on; Ctrl-P Ctrl-Q detaches. Otherwise attach ends when the
app does, or on Ctrl-C, which is not passed on to the app.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, pm, err := openRunningPod(args[0])
				if err != nil {
					return err
				}
				app, err := stage0.AttachApp(pm, cfg)
				if err != nil {
					return fmt.Errorf("pod %s: %w", p.UUID, err)
				}
				states, err := stage0.AppStates(p)
				if err != nil {
					return err
				}
				for _, st := range states {
					switch {
					case st.Name != app:
					case st.State == stage0.AppExited:
						return fmt.Errorf("pod %s: app %s has exited", p.UUID, app)
					case st.State == stage0.AppCreated && st.Started.IsZero():
						return fmt.Errorf("pod %s: app %s has not been started (rkt app start)", p.UUID, app)
					}
				}
				// Attach returns only if it could not exec the entrypoint.
				return fmt.Errorf("pod %s: %w", p.UUID, stage0.Attach(p, app, cfg.Mode))
			},
		}
		cmd.Flags().StringVar(&cfg.App, "app", "", "the app to attach to (needed when several apps are attachable)")
		cmd.Flags().StringVar(&cfg.Mode, "mode", "auto", "list, auto, or a comma-separated list of endpoints: tty, stdin, stdout, stderr")
		return cmd
	})
}
