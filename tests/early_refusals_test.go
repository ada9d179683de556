package tests

// Refusals that stage0 makes before a pod exists, where a stage1 used to
// make them after the pod had been created or had started booting.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneLine254 fails unless r is exit 254 with one line on stderr holding
// every part of want.
func oneLine254(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	if r.Code != 254 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.HasPrefix(r.Stderr, "rkt: ") {
		t.Errorf("%s: want exit 254 and one `rkt:` line: %s", what, r)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("%s: stderr lacks %q: %s", what, w, r.Stderr)
		}
	}
	if r.Stdout != "" {
		t.Errorf("%s: something ran: %q", what, r.Stdout)
	}
}

// The fly stage1 runs one app: a second one is refused by stage0 (from
// the stage1 image's max-apps annotation), for run and prepare alike.
func TestFlyTwoAppsRefusedBeforePod(t *testing.T) {
	e := flyEnv(t)
	r := e.fly(inspectName, "--", "-print-env", "---", inspectName, "--name=second", "--", "-print-env")
	oneLine254(t, "run", r, "too many apps for the stage1", "at most 1", "has 2")
	r = e.Run("prepare", "--stage1-path="+testImage("stage1-fly.aci"), inspectName, "---", inspectName, "--name=second")
	oneLine254(t, "prepare", r, "too many apps for the stage1")
	e.noPodsLeft("two apps for fly")
	if ls := e.MustRun("list", "--no-legend"); strings.TrimSpace(ls) != "" {
		t.Errorf("rkt list shows pods: %s", ls)
	}
	// One app still runs.
	if r := e.fly(inspectName, "--", "-exit=0"); r.Code != 0 {
		t.Fatalf("one app under fly: %s", r)
	}
}

// An unknown network, or a net.d file that does not parse, is refused
// before a pod exists by every command that takes --net; a prepared pod
// survives a typo given to run-prepared.
func TestUnknownNetworkRefusedBeforePod(t *testing.T) {
	e := newEnv(t)
	e.Fetch("inspect.aci")
	s1 := "--stage1-path=" + testImage("stage1.aci")
	netd := filepath.Join(e.LocalConfig, "net.d")

	r := e.Run("run", s1, "--net=nosuch", inspectName)
	oneLine254(t, "run", r, `unknown network: "nosuch"`, netd)
	r = e.Run("run", s1, "--net=default,nosuch:IP=10.0.0.5", inspectName)
	oneLine254(t, "run with two", r, `"nosuch"`)
	r = e.Run("prepare", s1, "--net=nosuch", inspectName)
	oneLine254(t, "prepare", r, `"nosuch"`)
	r = e.Run("app", "sandbox", s1, "--net=nosuch")
	oneLine254(t, "app sandbox", r, `"nosuch"`)
	e.noPodsLeft("unknown network")

	uuid := strings.TrimSpace(e.MustRun("prepare", s1, "--net=host", inspectName, "--", "-exit=0"))
	r = e.Run("run-prepared", "--net=nosuch", uuid)
	oneLine254(t, "run-prepared", r, `"nosuch"`)
	if p := e.podsIn("prepared"); len(p) != 1 || p[0] != uuid {
		t.Fatalf("the prepared pod did not survive a bad --net to run-prepared: %v", p)
	}

	// A user network is known once net.d configures it; a malformed file
	// is named.
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(netd, "10-broken.conf")
	if err := os.WriteFile(bad, []byte(`{"cniVersion": "0.4.0", "name": "broken", `), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.Run("run", s1, "--net=default", inspectName)
	oneLine254(t, "malformed net.d", r, bad, "invalid JSON")
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	e.noPodsLeftIn("embryo", "prepare", "run")
	if err := os.WriteFile(filepath.Join(netd, "20-mine.conf"), []byte(`{"cniVersion": "0.4.0", "name": "mine", "type": "bridge", "bridge": "rkt-early0", "ipam": {"type": "host-local", "subnet": "10.231.7.0/24"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.Run("prepare", s1, "--net=mine", inspectName)
	if r.Code != 0 {
		t.Fatalf("prepare --net=mine with mine in net.d: %s", r)
	}
	e.MustRun("rm", strings.TrimSpace(r.Stdout))
	// run-prepared's default is still the pod's own recorded networks.
	if r := e.Run("run-prepared", uuid); r.Code != 0 {
		t.Fatalf("run-prepared after the refusal: %s", r)
	}
}
