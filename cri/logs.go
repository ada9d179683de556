package cri

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rktng/rkt/pkg/journalrecord"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// logFollower copies one container's output from its pod's journal (`rkt
// logs --follow --output=json`) into the file the kubelet reads
// (LogDirectory/LogPath), in the CRI format (criLine). The last record
// copied is remembered (its cursor, in the state directory), so that a
// server restarted while the container runs resumes without losing or
// repeating lines.
type logFollower struct {
	path, cursorPath string
	mu               sync.Mutex
	f                *os.File
	cancel           context.CancelFunc
	done             chan struct{}
}

// logPath is where the kubelet wants c's output, "" when it wants none.
func (c *container) logPath() string {
	if c.meta.LogPath == "" || c.sb.meta.LogDirectory == "" {
		return ""
	}
	if filepath.IsAbs(c.meta.LogPath) {
		return c.meta.LogPath
	}
	return filepath.Join(c.sb.meta.LogDirectory, c.meta.LogPath)
}

func (s *Server) cursorPath(id string) string { return filepath.Join(s.cfg.StateDir, id+".cursor") }

// startLogs starts copying c's output to its log file, unless it is
// already being copied or the kubelet asked for no file.
func (s *Server) startLogs(c *container) error {
	path := c.logPath()
	if path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logs[c.id]; ok {
		return nil
	}
	lf := &logFollower{path: path, cursorPath: s.cursorPath(c.id), done: make(chan struct{})}
	if err := lf.open(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	lf.cancel = cancel
	s.logs[c.id] = lf
	go s.follow(ctx, c, lf)
	go s.watchExit(ctx, c, lf)
	return nil
}

// stopLogs stops copying the output of container id and waits for the
// copy to end.
func (s *Server) stopLogs(id string) {
	s.mu.Lock()
	lf := s.logs[id]
	delete(s.logs, id)
	s.mu.Unlock()
	if lf == nil {
		return
	}
	lf.cancel()
	<-lf.done
	lf.mu.Lock()
	lf.f.Close()
	lf.mu.Unlock()
}

// resumeLogs restarts the copies of the containers that run, after the
// server (re)started.
func (s *Server) resumeLogs() {
	all, err := s.containers()
	if err != nil {
		return
	}
	for _, c := range all {
		if st, err := c.state(); err == nil && criState(st) == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := s.startLogs(c); err != nil {
				fmt.Fprintf(os.Stderr, "rkt-cri: logs of container %s: %v\n", c.id, err)
			}
		}
	}
}

func (lf *logFollower) open() error {
	if err := os.MkdirAll(filepath.Dir(lf.path), 0o755); err != nil {
		return fmt.Errorf("container log: %w", err)
	}
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("container log: %w", err)
	}
	lf.f = f
	return nil
}

// reopen closes the log file and opens the one now at its path (the
// kubelet rotates files by renaming them, then asks for this).
func (lf *logFollower) reopen() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	old := lf.f
	if err := lf.open(); err != nil {
		return err
	}
	old.Close()
	return nil
}

// criLine is a journal record as a line of the CRI log format: "TIME
// STREAM TAG TEXT", the tag P for a piece of a longer line (the kubelet
// joins it to what follows) and F for a line's last part.
func criLine(r journalrecord.Record) (string, bool) {
	us, err := strconv.ParseInt(r.Realtime, 10, 64)
	if err != nil {
		return "", false
	}
	stream, tag := "stdout", "F"
	if r.Stderr() {
		stream = "stderr"
	}
	if r.Partial() {
		tag = "P"
	}
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) + " " + stream + " " + tag + " " + string(r.Text()) + "\n", true
}

// follow copies records until ctx ends or rkt logs does (the pod ended).
func (s *Server) follow(ctx context.Context, c *container, lf *logFollower) {
	defer close(lf.done)
	args := append(append([]string{}, s.cfg.GlobalArgs...), "logs", "--follow", "--output=json", "--app="+c.app)
	if b, err := os.ReadFile(lf.cursorPath); err == nil && len(b) > 0 {
		args = append(args, "--after-cursor="+strings.TrimSpace(string(b)))
	}
	cmd := exec.CommandContext(ctx, s.cfg.Rkt, append(args, c.sb.p.UUID)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rkt-cri: logs of container %s: %v\n", c.id, err)
		return
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r journalrecord.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		line, ok := criLine(r)
		if !ok {
			continue
		}
		lf.mu.Lock()
		_, werr := lf.f.WriteString(line)
		lf.mu.Unlock()
		if werr == nil && r.Cursor != "" {
			_ = os.WriteFile(lf.cursorPath, []byte(r.Cursor), 0o600)
		}
	}
	_ = cmd.Wait()
}

// watchExit ends the copy a moment after the container exits (or its
// sandbox stops): journalctl --follow would otherwise wait for more
// forever.
func (s *Server) watchExit(ctx context.Context, c *container, lf *logFollower) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lf.done:
			s.forget(c.id, lf)
			return
		case <-tick.C:
		}
		// Created counts as running: the copy starts just before the
		// app does.
		st, err := c.state()
		if err == nil && criState(st) != runtimeapi.ContainerState_CONTAINER_EXITED && c.sb.running() {
			continue
		}
		// What the app wrote last may still be on its way to the
		// journal.
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
		lf.cancel()
		<-lf.done
		s.forget(c.id, lf)
		return
	}
}

// forget drops a follower that has ended on its own.
func (s *Server) forget(id string, lf *logFollower) {
	s.mu.Lock()
	if s.logs[id] == lf {
		delete(s.logs, id)
	}
	s.mu.Unlock()
	lf.mu.Lock()
	lf.f.Close()
	lf.mu.Unlock()
}

// ReopenContainerLog reopens the log file of a running container, after
// the kubelet renamed it away for rotation.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	lf := s.logs[c.id]
	s.mu.Unlock()
	if lf == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", req.ContainerId)
	}
	if err := lf.reopen(); err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
