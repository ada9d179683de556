package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistUnitsVerify checks every systemd unit that dist/ ships with
// systemd's own parser, pointed at the rkt under test, so that a typo in a
// directive or a unit that names a missing one fails here and not on a
// packager's machine.
func TestDistUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	units, _ := filepath.Glob("../dist/systemd/*")
	examples, _ := filepath.Glob("../dist/examples/*")
	units = append(units, examples...)
	if len(units) == 0 {
		t.Fatal("no units in dist/")
	}
	dir := t.TempDir()
	var names []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/bin/rkt", rktBin())
		name := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, names...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %v: %v\n%s", units, err, out)
	}
}

// TestBashCompletionLoads sources the completion script `make dist` ships
// and asks bash's completion for rkt's subcommands, the way a shell would.
func TestBashCompletionLoads(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	// The script builds on the bash-completion package, as every
	// distribution's completions do (it is in HOST_PACKAGES).
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bashCompletion); err != nil {
		t.Fatalf("%v: run make deps", err)
	}
	script := filepath.Join(t.TempDir(), "rkt")
	out, err := exec.Command(rktBin(), "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, out, 0o644); err != nil {
		t.Fatal(err)
	}
	// __start_rkt is what `complete -F` registers; calling it with the words
	// of a half-typed command fills COMPREPLY.
	probe := `source ` + bashCompletion + ` && source "$1" && complete -p rkt >/dev/null &&
		COMP_WORDS=(rkt ima) COMP_CWORD=1 COMP_LINE="rkt ima" COMP_POINT=7 &&
		__start_rkt rkt ima rkt && printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, "-c", probe, "probe", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(rktBin())+":"+os.Getenv("PATH"))
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "image") {
		t.Errorf("completing `rkt ima`: %v\n%s", err, got)
	}
}
