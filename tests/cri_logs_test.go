package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Lines longer than the journal's LineMax (48 KiB) reach the container's
// log as the CRI's partial lines (P) ending with a full one (F), which the
// kubelet joins back, the pieces of a line together; lines over 4 KiB
// are not lost on the way (journalctl leaves such fields out of its JSON
// unless told); stdout and stderr keep their names.
func TestCRILongLines(t *testing.T) {
	netNeedStage1(t)
	rt, img, ctx := criWithBusybox(t)
	logDir := t.TempDir()
	cfg := sandboxConfig("long", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE})
	cfg.LogDirectory = logDir
	sb, err := runSandbox(t, rt, ctx, cfg)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	script := `head -c 100000 /dev/zero | tr '\0' a; echo; echo short >&2; head -c 5000 /dev/zero | tr '\0' b; echo; sleep 600`
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "long"}, Image: img,
			LogPath: "long.log", Args: []string{"-c", script}}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	logFile := filepath.Join(logDir, "long.log")
	var text string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(logFile)
		if text = string(b); strings.Contains(text, "bbbb\n") {
			break
		}
	}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr) ([PF]) (.*)$`)
	var seq []string
	joined := map[string]*strings.Builder{"stdout": {}, "stderr": {}}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a CRI log line: %.100q", l)
		}
		seq = append(seq, m[1]+" "+m[2])
		joined[m[1]].WriteString(m[3])
		if m[2] == "F" {
			joined[m[1]].WriteString("\n")
		}
	}
	// Joined per stream as the kubelet joins them.
	if want := strings.Repeat("a", 100000) + "\n" + strings.Repeat("b", 5000) + "\n"; joined["stdout"].String() != want {
		t.Errorf("stdout: %d bytes, want %d: %.100q", joined["stdout"].Len(), len(want), joined["stdout"].String())
	}
	if got := joined["stderr"].String(); got != "short\n" {
		t.Errorf("stderr: %q", got)
	}
	// The app writes stderr after the long line, but through another
	// pipe, which may be read first or last: anywhere but inside a line.
	all := strings.Join(seq, ",")
	if !strings.Contains(all, "stdout P,stdout P,stdout F") || len(seq) != 5 {
		t.Errorf("streams and tags %v, want the long line in 3 pieces together (P P F)", seq)
	}
}
