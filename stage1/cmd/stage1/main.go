// Command stage1 is the default stage1's multi-call binary. The image's
// entrypoints are symlinks to it and it dispatches on argv[0]: init (run),
// enter, gc, stop, logs, attach and app-{add,start,stop,rm} for stage0; appexec (the
// app launcher), iotee (its output tee), reaper (exit statuses) and
// podwatch (the watchdog) for the pod's systemd.
//
// The runtime does not look up cgroup CPU limits for GOMAXPROCS: it kept
// the limit files open from fd 3, where the app launcher puts the sockets
// of socket activation, and none of these short-lived modes needs it.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/rktng/rkt/stage1"
	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	switch name := filepath.Base(os.Args[0]); name {
	case "init", "run":
		c, err := stage1.ParseRunArgs(args)
		if err != nil {
			fmt.Fprintf(os.Stderr, "stage1 run: %v\n", err)
			os.Exit(stage1.ExitLaunchFailed)
		}
		os.Exit(stage1.Run(context.Background(), c, os.Stdout, os.Stderr))
	case "enter":
		os.Exit(stage1.Enter(args, os.Stderr))
	case "gc":
		ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
		defer stop()
		os.Exit(stage1.GC(ctx, args, os.Stderr))
	case "stop":
		os.Exit(stage1.Stop(args, os.Stderr))
	case "logs":
		ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
		defer stop()
		os.Exit(stage1.LogsEntrypoint(ctx, args, os.Stdout, os.Stderr))
	case "attach":
		ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM)
		defer stop()
		os.Exit(stage1.AttachEntrypoint(ctx, args, os.Stdin, os.Stdout, os.Stderr))
	case "app-add", "app-start", "app-stop", "app-rm":
		os.Exit(stage1.AppEntrypoint(strings.TrimPrefix(name, "app-"), args, os.Stderr))
	case "appexec":
		os.Exit(stage1.Launch(args))
	case "iotee":
		os.Exit(stage1.Tee(args))
	case "reaper":
		os.Exit(stage1.Reap(args))
	case "podwatch":
		os.Exit(stage1.Watch())
	default:
		fmt.Fprintf(os.Stderr, "stage1: unknown entrypoint %q\n", name)
		os.Exit(stage1.ExitLaunchFailed)
	}
}
