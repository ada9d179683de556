package tests

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The appc App Container Executor validator (github.com/appc/spec/ace),
// run as rkt ran it: ace-validator-main (with pre-start and post-stop
// handlers) and ace-validator-sidekick in one pod, sharing the empty
// volume "database", under the default stage1.

func aceArgs(extra ...string) []string {
	args := append([]string{"--insecure-options=image", "run", "--stage1-path=" + testImage("stage1.aci"),
		"--volume=database,kind=empty"}, extra...)
	if !strings.Contains(strings.Join(extra, " "), "--net=") {
		args = append(args, "--net=host")
	}
	return append(args, testImage("ace-validator-main.aci"), "---", testImage("ace-validator-sidekick.aci"))
}

// aceChecks asserts the validator's modes that need no metadata service,
// and returns main's complaints ("==> ..." lines).
func aceChecks(t *testing.T, r result) []string {
	t.Helper()
	for _, want := range []string{"[ace-validator-main] prestart OK\n", "[ace-validator-sidekick] sidekick OK\n",
		"[ace-validator-main] poststop OK\n"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("missing %q: %s", want, r)
		}
	}
	var errs []string
	for _, line := range strings.Split(r.Stderr, "\n") {
		if strings.HasPrefix(line, "[ace-validator-main] ==> ") {
			errs = append(errs, strings.TrimPrefix(line, "[ace-validator-main] ==> "))
		}
	}
	return errs
}

// Without a metadata service, everything but main's metadata checks
// passes: main's only complaint is the missing AC_METADATA_URL.
func TestACEValidatorWithoutMetadata(t *testing.T) {
	e := newEnv(t)
	r := e.Run(aceArgs()...)
	errs := aceChecks(t, r)
	if len(errs) != 1 || errs[0] != "AC_METADATA_URL is not set" {
		t.Fatalf("main failed more than the metadata check: %q\n%s", errs, r)
	}
	if r.Code != 1 || !strings.Contains(r.Stdout, "[ace-validator-main] main FAIL\n") {
		t.Fatalf("want main FAIL (exit 1) without a metadata service: %s", r)
	}
}

// With the metadata service serving AC_METADATA_URL, the whole validator
// passes: on the host's network (the pod bound by its token) and on the
// default network (bound by its token and its address too).
func TestACEValidatorWithMetadata(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	sock := filepath.Join(e.root, "mds.sock")
	mds := e.Cmd("metadata-service", "--listen-port="+strconv.Itoa(port), "--socket="+sock,
		"--state-dir="+filepath.Join(e.root, "mds"))
	if err := mds.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = mds.Process.Kill()
		_ = mds.Wait()
	})
	waitFor(t, "metadata service socket", func() bool { _, err := os.Stat(sock); return err == nil })

	for _, network := range []string{"host", "default"} {
		r := e.Run(aceArgs("--mds-register", "--mds-socket="+sock, "--net="+network)...)
		errs := aceChecks(t, r)
		if r.Code != 0 || len(errs) > 0 || !strings.Contains(r.Stdout, "[ace-validator-main] main OK\n") {
			t.Fatalf("ACE validator with metadata service, --net=%s: %q\n%s", network, errs, r)
		}
	}
}
