package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildDir is the tree `make` filled: bin/rkt, images/*.aci.
var buildDir string

func TestMain(m *testing.M) {
	buildDir = os.Getenv("RKT_BUILD_DIR")
	if buildDir == "" {
		abs, _ := filepath.Abs("../build")
		buildDir = abs
	}
	if _, err := os.Stat(filepath.Join(buildDir, "bin", "rkt")); err != nil {
		fmt.Fprintf(os.Stderr, "functional tests need `make` first: %v\n", err)
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "functional tests need root")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// rktBin is the rkt binary under test.
func rktBin() string { return filepath.Join(buildDir, "bin", "rkt") }

// testImage is the path of an image `make` built, e.g. testImage("inspect.aci").
func testImage(name string) string { return filepath.Join(buildDir, "images", name) }

// env is one test's private rkt installation: data and config directories
// under a temporary directory, never /var/lib/rkt or /etc/rkt.
type env struct {
	t            *testing.T
	root         string
	Dir          string
	LocalConfig  string
	SystemConfig string
	UserConfig   string
}

// newEnv makes a private rkt installation and registers its cleanup: a gc of
// every pod, then a check that no mount under it is left on the host.
func newEnv(t *testing.T) *env {
	t.Helper()
	root, err := os.MkdirTemp("", "rkt-test-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root,
		Dir:          filepath.Join(root, "data"),
		LocalConfig:  filepath.Join(root, "local-config"),
		SystemConfig: filepath.Join(root, "system-config"),
		UserConfig:   filepath.Join(root, "user-config"),
	}
	for _, d := range []string{e.Dir, e.LocalConfig, e.SystemConfig, e.UserConfig} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.cleanup)
	return e
}

func (e *env) globalArgs() []string {
	return []string{"--dir=" + e.Dir, "--local-config=" + e.LocalConfig,
		"--system-config=" + e.SystemConfig, "--user-config=" + e.UserConfig}
}

// Cmd builds an rkt command with this environment's global flags.
func (e *env) Cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(rktBin(), append(e.globalArgs(), args...)...)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	return cmd
}

// result is what a finished command left behind.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Run runs rkt with args and returns its output and exit code; it fails the
// test only if rkt could not be started or ran for more than five minutes.
func (e *env) Run(args ...string) result {
	e.t.Helper()
	return e.RunCmd(e.Cmd(args...))
}

// RunCmd runs a prepared command, as Run does.
func (e *env) RunCmd(cmd *exec.Cmd) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errb
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %v: %v", cmd.Args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		e.t.Fatalf("%v timed out\nstdout:\n%s\nstderr:\n%s", cmd.Args, out.String(), errb.String())
	}
	r := result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%v: %v", cmd.Args, err)
	}
	return r
}

// MustRun runs rkt and fails the test unless it exits 0; it returns stdout.
func (e *env) MustRun(args ...string) string {
	e.t.Helper()
	r := e.Run(args...)
	if r.Code != 0 {
		e.t.Fatalf("rkt %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// MustFail runs rkt, fails the test if it exits 0, and returns the result.
func (e *env) MustFail(args ...string) result {
	e.t.Helper()
	r := e.Run(args...)
	if r.Code == 0 {
		e.t.Fatalf("rkt %s succeeded, want failure: %s", strings.Join(args, " "), r)
	}
	return r
}

// Fetch imports a test image without signature checks and returns its ID.
func (e *env) Fetch(image string) string {
	e.t.Helper()
	return strings.TrimSpace(e.MustRun("--insecure-options=image", "fetch", testImage(image)))
}

// mountsUnder lists the host mount points below path.
func mountsUnder(path string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var found []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == path || strings.HasPrefix(fields[4], path+"/")) {
			found = append(found, fields[4])
		}
	}
	return found
}

func (e *env) cleanup() {
	// Collect whatever pods the test left, then insist the host is clean.
	_ = e.RunCmd(e.Cmd("gc", "--grace-period=0s"))
	if m := mountsUnder(e.root); len(m) > 0 {
		e.t.Errorf("mounts left on the host after gc: %v", m)
		for i := len(m) - 1; i >= 0; i-- {
			_ = exec.Command("umount", "-l", m[i]).Run()
		}
	}
	if os.Getenv("RKT_TEST_KEEP") == "" {
		_ = os.RemoveAll(e.root)
	}
}

// start starts cmd in the background; a process still running when the
// test ends is killed.
func (e *env) start(cmd *exec.Cmd) {
	e.t.Helper()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
}
