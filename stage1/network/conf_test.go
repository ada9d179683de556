package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rktng/rkt/pkg/netconf"
)

func names(confs []*netConf) string {
	var n []string
	for _, c := range confs {
		n = append(n, c.name)
	}
	return strings.Join(n, ",")
}

// resolveNets gives net.d's lists as they are and built-in networks as
// builtinConf makes them, in pkg/netconf's order.
func TestResolveNets(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"10-b.conf":     `{"cniVersion":"1.0.0","name":"b","type":"bridge"}`,
		"20-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	user, err := netconf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := netconf.ParseRequests([]string{"all"})
	if err != nil {
		t.Fatal(err)
	}
	confs, args, err := resolveNets(reqs, user)
	if err != nil {
		t.Fatal(err)
	}
	if names(confs) != "b,a,default" || len(args) != 3 {
		t.Fatalf("--net=all: %s %q", names(confs), args)
	}
	if !confs[1].hasCapability("portMappings") || confs[0].hasCapability("portMappings") {
		t.Error("portMappings capability misread")
	}
	if confs[0].source != filepath.Join(dir, "10-b.conf") || confs[0].mainType() != "bridge" {
		t.Errorf("user network: source %q type %q", confs[0].source, confs[0].mainType())
	}
	if confs[2].source != builtinSource(NetDefault) || confs[2].mainType() != "ptp" || confs[2].leaseDir() == "" {
		t.Errorf("built-in default: source %q type %q lease dir %q", confs[2].source, confs[2].mainType(), confs[2].leaseDir())
	}
}
