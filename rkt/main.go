// Command rkt is stage0: the command line that fetches and stores images,
// prepares pods and hands them to a stage1. Each command lives in its own
// file; flags are parsed into plain config structs that the store, stage0 and
// the fetchers act on.
package main

import (
	"errors"
	"fmt"
	"os"
)

// exitError carries a specific exit code (for example an app's) out of a
// command without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errExitCode is rkt's own failure code, distinct from the codes apps return.
const errExitCode = 254

func main() {
	root := newRootCommand()
	err := root.Execute()
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
	os.Exit(errExitCode)
}
