package netconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func joinNames(joins []Join) (string, string) {
	var n, a []string
	for _, j := range joins {
		n = append(n, j.Name)
		a = append(a, j.Args)
	}
	return strings.Join(n, ","), strings.Join(a, ",")
}

func writeConfs(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolve(t *testing.T) {
	dir := writeConfs(t, map[string]string{
		"10-b.conf":     `{"cniVersion":"1.0.0","name":"b","type":"bridge"}`,
		"20-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		"README":        `not a network`,
	})
	user, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(user) != 2 || user[0].Name != "b" || user[1].Name != "a" {
		t.Fatalf("user networks in file name order: %+v", user)
	}
	if p, _ := user[0].Raw["plugins"].([]any); len(p) != 1 {
		t.Errorf("a .conf is not wrapped in a list: %v", user[0].Raw)
	}
	for _, tc := range []struct {
		nets []string
		want string
		args string
	}{
		{nil, "default", ""},
		{[]string{"default"}, "default", ""},
		{[]string{"a:IP=10.1.0.5;K=V"}, "a,default-restricted", "IP=10.1.0.5;K=V,"},
		{[]string{"default-restricted"}, "default-restricted", ""},
		{[]string{"a", "default"}, "a,default", ","},
		{[]string{"all"}, "b,a,default", ",,"},
	} {
		reqs, err := ParseRequests(tc.nets)
		if err != nil {
			t.Fatalf("%v: %v", tc.nets, err)
		}
		joins, err := Resolve(reqs, user)
		if err != nil {
			t.Fatalf("%v: %v", tc.nets, err)
		}
		if n, a := joinNames(joins); n != tc.want || a != tc.args {
			t.Errorf("--net=%v: got %s (args %q), want %s (args %q)", tc.nets, n, a, tc.want, tc.args)
		}
	}
	for _, bad := range [][]string{{"none", "default"}, {"host:IP=1.2.3.4"}, {"a", "a"}, {"a:IP"}, {":x"}} {
		if _, err := ParseRequests(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("--net=%v: err = %v, want ErrBadConfig", bad, err)
		}
	}
	reqs, _ := ParseRequests([]string{"zzz"})
	if _, err := Resolve(reqs, user); !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "a, b, default") {
		t.Errorf("unknown network: %v", err)
	}
	// A user network may redefine default; it is then joined as written.
	dir2 := writeConfs(t, map[string]string{"d.conf": `{"cniVersion":"1.0.0","name":"default","type":"bridge"}`})
	user2, err := Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ = ParseRequests(nil)
	if joins, err := Resolve(reqs, user2); err != nil || len(joins) != 1 || joins[0].List == nil {
		t.Errorf("redefined default: %+v %v", joins, err)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	for name, content := range map[string]string{
		"no-name.conf":     `{"cniVersion":"1.0.0","type":"ptp"}`,
		"no-type.conf":     `{"cniVersion":"1.0.0","name":"x"}`,
		"no-version.conf":  `{"name":"x","type":"ptp"}`,
		"reserved.conf":    `{"cniVersion":"1.0.0","name":"host","type":"ptp"}`,
		"list.conflist":    `{"cniVersion":"1.0.0","name":"x","type":"ptp"}`,
		"untyped.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"ptp"},{}]}`,
		"junk.json":        `{"cniVersion":`,
	} {
		dir := writeConfs(t, map[string]string{name: content})
		p := filepath.Join(dir, name)
		if _, err := Load(dir); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrBadConfig naming the file", name, err)
		}
	}
	dir := writeConfs(t, map[string]string{
		"1.conf": `{"cniVersion":"1.0.0","name":"same","type":"ptp"}`,
		"2.conf": `{"cniVersion":"1.0.0","name":"same","type":"ptp"}`,
	})
	if _, err := Load(dir); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "already defined") {
		t.Errorf("duplicate network: %v", err)
	}
	if l, err := Load(filepath.Join(dir, "absent")); err != nil || l != nil {
		t.Errorf("a missing net.d: %v %v, want no networks", l, err)
	}
}

// Check: what Setup would refuse, refused without touching the host; host
// and none never read net.d.
func TestCheck(t *testing.T) {
	local := t.TempDir()
	if err := os.MkdirAll(Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(Dir(local), "bad.conf"), []byte(`{`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(local, nil); !errors.Is(err, ErrBadConfig) {
		t.Errorf("malformed net.d file: %v", err)
	}
	for _, n := range []string{Host, None} {
		if err := Check(local, []string{n}); err != nil {
			t.Errorf("--net=%s read net.d: %v", n, err)
		}
	}
	empty := t.TempDir()
	if err := Check(empty, []string{"nosuch"}); !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), Dir(empty)) {
		t.Errorf("unknown network: %v", err)
	}
	if err := Check(empty, []string{"default:IP=172.16.28.9"}); err != nil {
		t.Errorf("default with an IP: %v", err)
	}
}
