package tests

import (
	"strings"
	"testing"
)

// The fly has no user namespace: --private-users is refused with one line
// rather than ignored, which would run the app as the host's root.
func TestFlyRefusesPrivateUsers(t *testing.T) {
	e := flyEnv(t)
	r := e.fly("--private-users", inspectName, "--", "-print-user")
	if r.Code == 0 || !strings.Contains(r.Stderr, "--private-users") ||
		strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || strings.Contains(r.Stdout, "uid=") {
		t.Fatalf("want one line refusing --private-users and no app run: %s", r)
	}
}

// A malformed --private-users is refused in one line before any pod
// exists (nspawn used to reject it after the pod had started).
func TestPrivateUsersMalformedRefused(t *testing.T) {
	e := flyEnv(t)
	r := e.nspawn("--private-users=bogus", inspectName)
	if r.Code != 254 || !strings.Contains(r.Stderr, "--private-users=bogus") ||
		strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("want exit 254 and one line: %s", r)
	}
	e.noPodsLeftIn("embryo", "prepare", "run")
}
