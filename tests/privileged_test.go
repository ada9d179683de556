package tests

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Privileged apps (--privileged, the CRI's privileged containers): every
// capability, no seccomp filter, the host's devices, writable /sys and
// /proc/sys; only in a pod started privileged, next to apps that keep
// all of their restrictions.

// privProbe prints what tells a privileged app from another.
const privProbe = `ls ` + "HOSTDEV" + ` >/dev/null 2>&1 && echo hostdev=yes || echo hostdev=no
grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -d '\t '
awk '$2 == "/sys" { split($4, o, ","); s = o[1] } END { print "sys=" s }' /proc/self/mounts`

// hostDevice is a device node of the host that nspawn does not give a
// pod, or "" when none of the usual ones exists.
func hostDevice() string {
	for _, d := range []string{"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda", "/dev/loop-control"} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return ""
}

// ownCapEff is this process's effective capability set, as /proc shows it.
func ownCapEff(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s*(\S+)`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("no CapEff")
	}
	return m[1]
}

func TestPrivilegedApp(t *testing.T) {
	dev := hostDevice()
	if dev == "" {
		t.Skip("no usual host device node to look for")
	}
	probe := strings.ReplaceAll(privProbe, "HOSTDEV", dev)
	e := newEnv(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startSandbox("--net=host", "--privileged")
	e.MustRun("app", "add", uuid, busyboxName, "--name=priv", "--privileged", "--exec=/bin/sh", "--", "-c", probe)
	e.MustRun("app", "add", uuid, busyboxName, "--name=plain", "--exec=/bin/sh", "--", "-c", probe)
	for _, a := range []string{"priv", "plain"} {
		e.MustRun("app", "start", uuid, "--app="+a)
		e.waitAppState(uuid, a, "exited")
	}
	want := map[string][]string{
		"priv":  {"hostdev=yes", "CapEff:" + ownCapEff(t), "Seccomp:0", "sys=rw"},
		"plain": {"hostdev=no", "Seccomp:2", "sys=ro"},
	}
	for a, lines := range want {
		logs := e.MustRun("logs", "--app="+a, uuid)
		for _, l := range lines {
			if !strings.Contains(logs, l+"\n") {
				t.Errorf("app %s: no %q in %q", a, l, logs)
			}
		}
	}
	if logs := e.MustRun("logs", "--app=plain", uuid); strings.Contains(logs, "CapEff:"+ownCapEff(t)) {
		t.Errorf("the plain app has every capability: %q", logs)
	}
	// A pod not started privileged takes no privileged app.
	_, plainPod := e.startSandbox("--net=host")
	oneLine(t, e.Run("app", "add", plainPod, busyboxName, "--name=priv", "--privileged", "--exec=/bin/true"), "was not started privileged")

	// rkt run: a privileged app makes its pod privileged.
	out := e.MustRun(nspawnArgs(busyboxName, "--privileged", "--exec=/bin/sh", "--", "-c", probe)...)
	for _, l := range []string{"hostdev=yes", "Seccomp:0", "sys=rw"} {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("rkt run of a privileged app: no %q in %q", l, out)
		}
	}
}
