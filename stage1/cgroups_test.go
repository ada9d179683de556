package stage1

import "testing"

func TestInSystemdService(t *testing.T) {
	for _, c := range []struct {
		cgroup string
		want   bool
	}{
		{"0::/system.slice/mypod.service\n", true},
		// the run entrypoint's own cgroup below the service
		{"0::/system.slice/mypod.service/rkt-0f1e/stage1\n", true},
		{"12:name=systemd:/system.slice/mypod.service\n11:memory:/system.slice/mypod.service\n0::/\n", true},
		{"0::/user.slice/user-1000.slice/session-3.scope\n", false},
		{"0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-term.scope\n", false},
		{"0::/user.slice/user-1000.slice/user@1000.service\n", false},
		{"0::/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service\n", true},
		// a host without systemd: this machine's shape
		{"12:name=systemd:/\n0::/\n", false},
		{"", false},
	} {
		if got := inSystemdService(c.cgroup); got != c.want {
			t.Errorf("inSystemdService(%q) = %v, want %v", c.cgroup, got, c.want)
		}
	}
}
