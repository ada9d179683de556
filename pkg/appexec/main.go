package appexec

import (
	"fmt"
	"io"
	"strings"
)

// ExitLaunchFailed is the exit status of a launcher that could not start
// its app, rkt's code for its own failures.
const ExitLaunchFailed = 254

// Main is the launcher mode of a stage1 multi-call binary:
//
//	appexec CONFIG-FILE
//
// reads the Config that the stage1 wrote with WriteConfig and execs the
// app. It returns only on failure, with the status to exit with, having
// printed one line to stderr.
func Main(args []string, stderr io.Writer) int { return MainRooted(args, stderr, nil) }

// MainRooted is Main with ExecRooted's rooted callback.
func MainRooted(args []string, stderr io.Writer, rooted func() error) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: appexec CONFIG-FILE")
		return ExitLaunchFailed
	}
	c, err := ReadConfig(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "appexec: %v\n", err)
		return ExitLaunchFailed
	}
	if c.NeedsPIDNamespace() {
		return LaunchInPIDNamespace(args[0], stderr)
	}
	err = ExecRooted(c, rooted)
	fmt.Fprintf(stderr, "appexec: %v\n", err)
	return ExitLaunchFailed
}
