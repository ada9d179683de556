package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var app string
		cmd := &cobra.Command{
			Use:   "enter [--app=NAME] UUID [CMD [ARGS...]]",
			Short: "Run a command in a running app of a pod (default /bin/sh)",
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, pm, err := openRunningPod(args[0])
				if err != nil {
					return err
				}
				app, err := appOf(p.UUID, pm, app)
				if err != nil {
					return err
				}
				pid, err := p.Pid()
				if err != nil {
					return fmt.Errorf("pod %s: no pid yet: %w", p.UUID, err)
				}
				eargs := []string{"--pid=" + strconv.Itoa(pid), "--appname=" + app, "--"}
				if len(args) > 1 {
					eargs = append(eargs, args[1:]...)
				} else {
					eargs = append(eargs, "/bin/sh")
				}
				return stage0.ExecEntrypoint(p, "enter", eargs)
			},
		}
		cmd.Flags().SetInterspersed(false)
		cmd.Flags().StringVar(&app, "app", "", "the app to enter (needed when the pod has several)")
		return cmd
	})
}

// openRunningPod opens the pod a UUID (or prefix) names and reads its
// manifest, refusing a pod that is not running.
func openRunningPod(uuid string) (*pod.Pod, *schema.PodManifest, error) {
	p, err := pod.Open(globals.Dir, uuid)
	if err != nil {
		return nil, nil, err
	}
	if st := p.Status(); st != pod.StatusRunning {
		return nil, nil, fmt.Errorf("pod %s is %s, not running", p.UUID, st)
	}
	pm, err := p.Manifest()
	if err != nil {
		return nil, nil, err
	}
	return p, pm, nil
}

// appOf is the app --app names in the pod, or its only app.
func appOf(uuid string, pm *schema.PodManifest, app string) (string, error) {
	if app == "" {
		if len(pm.Apps) != 1 {
			var names []string
			for _, ra := range pm.Apps {
				names = append(names, ra.Name.String())
			}
			return "", fmt.Errorf("pod %s has several apps (%s): choose one with --app", uuid, strings.Join(names, ", "))
		}
		return pm.Apps[0].Name.String(), nil
	}
	for _, ra := range pm.Apps {
		if ra.Name.String() == app {
			return app, nil
		}
	}
	return "", fmt.Errorf("pod %s has no app %q", uuid, app)
}
