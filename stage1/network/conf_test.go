package network

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func names(confs []*netConf) string {
	var n []string
	for _, c := range confs {
		n = append(n, c.name)
	}
	return strings.Join(n, ",")
}

func TestResolveNets(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"10-b.conf":     `{"cniVersion":"1.0.0","name":"b","type":"bridge"}`,
		"20-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		"README":        `not a network`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	user, err := loadUserConfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if names(user) != "b,a" {
		t.Fatalf("user networks in file name order: %s", names(user))
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
		reqs, err := parseNets(tc.nets)
		if err != nil {
			t.Fatalf("%v: %v", tc.nets, err)
		}
		confs, args, err := resolveNets(reqs, user)
		if err != nil {
			t.Fatalf("%v: %v", tc.nets, err)
		}
		if names(confs) != tc.want || strings.Join(args, ",") != tc.args {
			t.Errorf("--net=%v: got %s (args %q), want %s (args %q)", tc.nets, names(confs), args, tc.want, tc.args)
		}
	}
	if !user[1].hasCapability("portMappings") || user[0].hasCapability("portMappings") {
		t.Error("portMappings capability misread")
	}
	for _, bad := range [][]string{{"none", "default"}, {"host:IP=1.2.3.4"}, {"a", "a"}, {"a:IP"}, {":x"}} {
		if _, err := parseNets(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("--net=%v: err = %v, want ErrBadConfig", bad, err)
		}
	}
	reqs, _ := parseNets([]string{"zzz"})
	if _, _, err := resolveNets(reqs, user); !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "a, b, default") {
		t.Errorf("unknown network: %v", err)
	}
}

func TestLoadUserConfsRefusesBadFiles(t *testing.T) {
	for name, content := range map[string]string{
		"no-name.conf":    `{"cniVersion":"1.0.0","type":"ptp"}`,
		"no-type.conf":    `{"cniVersion":"1.0.0","name":"x"}`,
		"no-version.conf": `{"name":"x","type":"ptp"}`,
		"reserved.conf":   `{"cniVersion":"1.0.0","name":"host","type":"ptp"}`,
		"list.conflist":   `{"cniVersion":"1.0.0","name":"x","type":"ptp"}`,
		"junk.json":       `{"cniVersion":`,
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadUserConfs(dir); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrBadConfig naming the file", name, err)
		}
	}
	dir := t.TempDir()
	for _, n := range []string{"1.conf", "2.conf"} {
		_ = os.WriteFile(filepath.Join(dir, n), []byte(`{"cniVersion":"1.0.0","name":"same","type":"ptp"}`), 0o644)
	}
	if _, err := loadUserConfs(dir); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "already defined") {
		t.Errorf("duplicate network: %v", err)
	}
}
