package tests

import (
	"strings"
	"testing"
)

// Shell completion (bash, zsh, fish through cobra's __complete) of what
// only the data directory knows: pod UUIDs, a pod's apps, stored images.
func TestShellCompletion(t *testing.T) {
	e := newEnv(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startSandbox("--net=host")
	e.MustRun("app", "add", uuid, busyboxName, "--name=box", "--exec=/bin/true")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", ""}, uuid + "\trunning: box"},
		{[]string{"stop", uuid[:4]}, uuid + "\t"},
		{[]string{"logs", uuid, "--app", ""}, "box\n"},
		{[]string{"cp", uuid[:6]}, uuid + ":\t"},
		{[]string{"image", "rm", "rktng.io/test/b"}, busyboxName + "\tsha512-"},
		// Flags with a fixed set of values, a list's after its last comma.
		{[]string{"run", "--ipc", "p"}, "private\nparent\n"},
		{[]string{"app", "sandbox", "--ipc", ""}, "auto\nprivate\nparent\n"},
		{[]string{"fetch", "--pull-policy", "u"}, "update\n"},
		{[]string{"fetch", "--insecure-options", "image,t"}, "image,tls\n"},
		{[]string{"image", "list", "--format", "json-"}, "json-pretty\n"},
	} {
		out := e.MustRun(append([]string{"__complete"}, c.args...)...)
		if !strings.Contains(out, c.want) {
			t.Errorf("rkt __complete %q: %q, want %q in it", c.args, out, c.want)
		}
	}
	if out := e.MustRun("__complete", "status", "ffffffff"); strings.Contains(out, uuid) {
		t.Errorf("a prefix that matches no pod completed to %q", out)
	}
}
