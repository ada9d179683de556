package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startIso starts a pod under flavor f in the background and waits until
// it is ready; it returns the command and the pod's UUID.
func (e *env) startIso(f isoFlavor, args ...string) (*exec.Cmd, string) {
	e.t.Helper()
	uuidFile := filepath.Join(e.root, "uuid-"+time.Now().Format("150405.000000000"))
	full := append([]string{"run", "--stage1-path=" + f.image, "--uuid-file-save=" + uuidFile}, f.podFlags...)
	cmd := e.Cmd(append(full, args...)...)
	e.start(cmd)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(uuidFile); err == nil && len(b) > 0 {
			uuid := strings.TrimSpace(string(b))
			e.MustRun("status", "--wait-ready=30s", uuid)
			return cmd, uuid
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pod did not start: %v", cmd.Args)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// enter runs `rkt enter UUID CMD...`, retrying for a few seconds while
// the pod's app has not yet recorded its PID (it just started).
func (e *env) enter(uuid string, cmd ...string) result {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.Run(append([]string{"enter", uuid}, cmd...)...)
		if r.Code != 254 || !strings.Contains(r.Stderr, "not running") || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An entered command gets exactly the app's restrictions: its bounding
// and effective capability sets, no_new_privs, seccomp filter and cgroup
// limits (rkt's enter gave every capability and no filter:
// CVE-2019-10144, -10145, -10147).
func TestEnterCannotExceedApp(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env, f isoFlavor) {
		cmd, uuid := e.startIso(f, inspectName, "--caps-retain=CAP_KILL,CAP_CHOWN", "--no-new-privileges",
			"--seccomp=mode=remove,errno=EPERM,@rkt/default-blacklist,sethostname", "--memory=96Mi",
			"--", "-sleep=120s")
		probe := []string{"/inspect", "-print-caps", "-print-nnp", "-print-seccomp", "-print-cgroup-memory",
			"-check-syscall=sethostname", "-check-syscall=mount", "-check-syscall=swapoff", "-check-syscall=unshare", "-exit=0"}
		r := e.enter(uuid, probe...)
		m := parseInspect(r.Stdout)
		if r.Code != 0 {
			t.Fatalf("enter: %s", r)
		}
		if m["cap.bnd.names"] != "CAP_CHOWN,CAP_KILL" || m["cap.eff.names"] != "CAP_CHOWN,CAP_KILL" {
			t.Errorf("entered command capabilities: bounding %q effective %q, want the app's CAP_CHOWN,CAP_KILL", m["cap.bnd.names"], m["cap.eff.names"])
		}
		if m["no_new_privs"] != "1" || m["seccomp"] != "2" {
			t.Errorf("entered command: no_new_privs %q seccomp %q", m["no_new_privs"], m["seccomp"])
		}
		for _, sc := range []string{"sethostname", "mount", "swapoff", "unshare"} {
			if m["syscall:"+sc] != "EPERM" {
				t.Errorf("entered command escaped the app's filter: %s = %q", sc, m["syscall:"+sc])
			}
		}
		if m["memory.limit"] != "100663296" {
			t.Errorf("entered command is not under the app's memory limit: %q (%s)", m["memory.limit"], m["memory.cgroup"])
		}
		// Allocating beyond the app's limit kills the entered command.
		r = e.enter(uuid, "/inspect", "-alloc-mb=300")
		if r.Code == 0 || strings.Contains(r.Stdout, "alloc.mb=300") {
			t.Errorf("entered command allocated beyond the app's limit: %s", r)
		}
		// Still the app's pod after all that.
		if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "running" {
			t.Errorf("pod state after enter: %v", st)
		}
		e.MustRun("stop", uuid)
		exitCode(t, cmd)
	})
}

// Under the default stage1, an app without isolators has the default set,
// and so does a command entered into it: no CAP_SYS_ADMIN, no unshare.
func TestEnterDefaultsNspawn(t *testing.T) {
	f := nspawnFlavor(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	cmd, uuid := e.startIso(f, inspectName, "--", "-sleep=120s")
	r := e.enter(uuid, "/inspect", "-print-caps", "-print-seccomp", "-check-syscall=unshare", "-check-syscall=swapoff", "-exit=0")
	m := parseInspect(r.Stdout)
	if r.Code != 0 {
		t.Fatalf("enter: %s", r)
	}
	if strings.Contains(m["cap.bnd.names"], "CAP_SYS_ADMIN") || m["seccomp"] != "2" || m["syscall:unshare"] != "EPERM" || m["syscall:swapoff"] != "EPERM" {
		t.Errorf("entered command exceeds the app: %s", r.Stdout)
	}
	e.MustRun("stop", uuid)
	exitCode(t, cmd)
}

// An app of a --private-users pod is entered too (rkt's enter could not,
// nor could ours before): the command is root of the pod's user namespace,
// which maps it to an unprivileged host user, with the app's capabilities
// and filter, not the host's root.
func TestEnterPrivateUsers(t *testing.T) {
	f := nspawnFlavor(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	cmd, uuid := e.startIso(f, "--private-users", inspectName, "--caps-remove=CAP_NET_RAW", "--", "-sleep=120s")
	r := e.enter(uuid, "/inspect", "-print-user", "-print-caps", "-print-seccomp", "-read-file=/proc/self/uid_map",
		"-write-file=/entered", "-content=x", "-exit=0")
	if r.Code != 0 {
		t.Fatalf("enter: %s", r)
	}
	m := parseInspect(r.Stdout)
	uidMap := strings.Fields(strings.ReplaceAll(m["file:/proc/self/uid_map"], `\n`, " "))
	if m["uid"] != "0" || len(uidMap) != 3 || uidMap[0] != "0" || uidMap[1] == "0" {
		t.Errorf("entered command is not root of a shifted user namespace: %s", r.Stdout)
	}
	if strings.Contains(m["cap.bnd.names"], "CAP_NET_RAW") || !strings.Contains(m["cap.bnd.names"], "CAP_CHOWN") ||
		strings.Contains(m["cap.bnd.names"], "CAP_SYS_ADMIN") || m["seccomp"] != "2" {
		t.Errorf("entered command has other restrictions than the app: %s", r.Stdout)
	}
	if m["write:/entered"] != "ok" {
		t.Errorf("entered root cannot write the app's root: %s", r.Stdout)
	}
	e.MustRun("stop", uuid)
	exitCode(t, cmd)
}
