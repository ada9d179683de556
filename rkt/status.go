package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/spf13/cobra"
)

// parseWait reads --wait and --wait-ready as rkt did: a boolean (true
// waits forever) or a duration (negative: forever, zero: not at all).
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return -1, nil
	}
	if b, err := strconv.ParseBool(s); err == nil {
		if b {
			return -1, nil
		}
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a boolean nor a duration", s)
	}
	return d, nil
}

func waitContext(d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(context.Background(), d)
	}
	return context.WithCancel(context.Background())
}

func init() {
	register(func() *cobra.Command {
		var wait, waitReady, uuidFile string
		var format outputFormat
		cmd := &cobra.Command{
			Use:   "status [--wait[=bool|duration]] [--wait-ready[=bool|duration]] UUID",
			Short: "Check the status of a pod",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				dWait, err := parseWait(wait)
				if err != nil {
					return fmt.Errorf("--wait: %w", err)
				}
				dReady, err := parseWait(waitReady)
				if err != nil {
					return fmt.Errorf("--wait-ready: %w", err)
				}
				uuid := ""
				if len(args) == 1 {
					uuid = args[0]
				} else if uuidFile == "" {
					return fmt.Errorf("give a pod UUID or --uuid-file")
				}
				p, err := openPod(uuid, uuidFile)
				if err != nil {
					return err
				}
				if dReady != 0 {
					ctx, cancel := waitContext(dReady)
					err := p.WaitReady(ctx)
					cancel()
					if err != nil {
						return fmt.Errorf("waiting for pod %s to be ready: %w", p.UUID, err)
					}
				}
				if dWait != 0 {
					ctx, cancel := waitContext(dWait)
					err := p.WaitExited(ctx)
					cancel()
					if err != nil {
						return fmt.Errorf("waiting for pod %s to finish: %w", p.UUID, err)
					}
				}
				if err := p.Refresh(); err != nil {
					return err
				}
				info := describePod(p)
				w := cmd.OutOrStdout()
				if format != formatTable {
					return writeJSON(w, format, info)
				}
				fmt.Fprintf(w, "state=%s\n", info.State)
				fmt.Fprintf(w, "created=%s\n", fmtTime(info.created))
				if !info.started.IsZero() {
					fmt.Fprintf(w, "started=%s\n", fmtTime(info.started))
				}
				if info.status == pod.StatusRunning {
					fmt.Fprintf(w, "networks=%s\n", info.networksString())
				}
				switch info.status {
				case pod.StatusRunning, pod.StatusExited, pod.StatusExitedGarbage, pod.StatusDeleting:
					pid := -1
					if info.Pid != nil {
						pid = *info.Pid
					}
					fmt.Fprintf(w, "pid=%d\nexited=%t\n", pid, info.status != pod.StatusRunning)
					apps := append([]podApp(nil), info.Apps...)
					sort.SliceStable(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
					for _, a := range apps {
						if a.ExitCode != nil {
							fmt.Fprintf(w, "app-%s=%d\n", a.Name, *a.ExitCode)
						}
					}
				}
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&wait, "wait", "false", "wait for the pod to exit (true, or a timeout such as 10s)")
		f.Lookup("wait").NoOptDefVal = "true"
		f.StringVar(&waitReady, "wait-ready", "false", "wait for the pod to be ready (true, or a timeout)")
		f.Lookup("wait-ready").NoOptDefVal = "true"
		f.StringVar(&uuidFile, "uuid-file", "", "read the pod's UUID from this file")
		f.Var(&format, "format", "output format: json or json-pretty (default: key=value lines)")
		return cmd
	})
}
