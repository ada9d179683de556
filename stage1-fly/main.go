// Command fly is the fly stage1: one static binary whose entrypoints (run,
// enter, gc, stop, and the internal appexec launcher) are symlinks to it,
// dispatched on argv[0]. A fly pod is one app chrooted into its root in the
// private mount namespace stage0 made, sharing the host's network, PID and
// IPC namespaces. It implements interface version 5 of the stage1
// interface (Documentation/stage1-interface.md).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	// "fly ENTRYPOINT ARGS" works too, for debugging.
	if name == "fly" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	var code int
	switch name {
	case "run":
		code = run(args)
	case "enter":
		code = enter(args)
	case "stop":
		code = stop(args)
	case "gc":
		code = gc(args)
	case launcherName:
		code = launch()
	default:
		fmt.Fprintf(os.Stderr, "stage1-fly: unknown entrypoint %q (want run, enter, stop or gc)\n", name)
		code = 254
	}
	os.Exit(code)
}

// exitFailed is the status of stage1's own failures, as rkt's.
const exitFailed = 254

func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "stage1-fly: "+format+"\n", a...)
	return exitFailed
}

// splitFlags separates "--name=value" / "--name" flags from positional
// arguments; flags the fly does not use are accepted and ignored, since
// stage0 passes every flag of the interface.
func splitFlags(args []string) (map[string]string, []string) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "--") {
			k, v, ok := strings.Cut(a[2:], "=")
			if !ok {
				v = "true"
			}
			flags[k] = v
			continue
		}
		pos = append(pos, a)
	}
	return flags, pos
}
