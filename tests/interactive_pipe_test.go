package tests

// --interactive without a terminal: rkt run's stdin is a pipe or a file,
// as in `producer | rkt run --interactive IMAGE`.

import (
	"os"
	"strings"
	"testing"
)

func TestInteractivePipedStdin(t *testing.T) {
	e := newEnv(t)
	e.Fetch("inspect.aci")
	input := "first line\nno newline at the end"
	for _, fl := range []struct {
		name string
		args func(...string) []string
	}{{"nspawn", nspawnArgs}, {"fly", flyArgs}} {
		t.Run(fl.name, func(t *testing.T) {
			// The app reads to end of file and exits with its own code;
			// its output is the input, byte for byte.
			cmd := e.Cmd(fl.args("--interactive", inspectName, "--exec=/bin/sh", "--", "-c", "cat; exit 3")...)
			cmd.Stdin = strings.NewReader(input)
			r := e.RunCmd(cmd)
			if r.Code != 3 || r.Stdout != input {
				t.Fatalf("piped input: want exit 3 and stdout %q: %s", input, r)
			}

			// stdin from /dev/null: the app sees end of file at once.
			null, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer null.Close()
			cmd = e.Cmd(fl.args("--interactive", inspectName, "--exec=/bin/sh", "--", "-c", "read x || exit 5; exit 6")...)
			cmd.Stdin = null
			if r := e.RunCmd(cmd); r.Code != 5 {
				t.Fatalf("stdin /dev/null: want exit 5 (read saw end of file): %s", r)
			}
		})
	}
	e.MustRun("gc", "--grace-period=0s")
	e.noPodsLeft("piped interactive pods")
}
