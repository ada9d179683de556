package stage1

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/rktng/rkt/pkg/journalrecord"
	"github.com/rktng/rkt/pkg/pod"
)

// LogsConfig is `rkt logs`: which pod and apps, and how.
type LogsConfig struct {
	// JournalRoot is where the pod's stage1 root writes land on the host
	// (pod.Stage1UpperDir); the journal is under var/log/journal there.
	JournalRoot string
	// Stage1Rootfs is the rendered stage1 image whose journalctl reads
	// the journal; empty means the host's journalctl.
	Stage1Rootfs string
	// Apps restricts the output to these apps (SyslogIdentifier of their
	// units); all of Apps when Prefix is set.
	Apps []string
	// Prefix prints "[APP] " before each line, as `rkt run` does for a
	// pod of several apps; otherwise each message is printed as written.
	Prefix bool
	Follow bool
	// Lines is journalctl's --lines; 0 means all.
	Lines int
	// Output is a journalctl output mode (json for a program reading the
	// records); empty means as described for Prefix.
	Output string
	// AfterCursor starts after this journal cursor (json output gives
	// each record's), for a reader resuming where it stopped.
	AfterCursor string
}

// ErrNoJournal is returned for a pod that has no journal yet (it never
// booted).
var ErrNoJournal = errors.New("pod has no journal")

// ExitNoJournal is the logs entrypoint's exit status for ErrNoJournal,
// which it leaves to stage0 to put in its own words.
const ExitNoJournal = 3

// LogsEntrypoint is the logs entrypoint (rktng.io/rkt/stage1/logs). Stage0
// runs it from the stage1 tree in the store, with the pod directory as its
// working directory, for a running or an exited pod:
//
//	logs [--prefix] [--follow] [--lines=N] [--output=MODE] [--after-cursor=CURSOR] APP...
//
// It prints the records of the apps named (SyslogIdentifier of their
// units) from the journal the pod's journald keeps in the stage1 overlay's
// upper directory, through the stage1 root's own journalctl.
func LogsEntrypoint(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c LogsConfig
	fs.BoolVar(&c.Prefix, "prefix", false, "prefix each line with its app")
	fs.BoolVar(&c.Follow, "follow", false, "keep printing new records")
	fs.IntVar(&c.Lines, "lines", 0, "only the last N records")
	fs.StringVar(&c.Output, "output", "", "journalctl output mode")
	fs.StringVar(&c.AfterCursor, "after-cursor", "", "start after this journal cursor")
	if err := fs.Parse(args); err != nil {
		return ExitLaunchFailed
	}
	c.Apps = fs.Args()
	if len(c.Apps) == 0 {
		fmt.Fprintln(stderr, "stage1 logs: no app named")
		return ExitLaunchFailed
	}
	// The root this binary was started from (through an entrypoint's
	// symbolic link, which /proc/self/exe has resolved).
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "stage1 logs: %v\n", err)
		return ExitLaunchFailed
	}
	c.Stage1Rootfs = filepath.Dir(exe)
	c.JournalRoot = pod.Stage1UpperDir(".")
	switch err := Logs(ctx, c, stdout, stderr); {
	case errors.Is(err, ErrNoJournal):
		return ExitNoJournal
	case err != nil:
		fmt.Fprintf(stderr, "stage1 logs: %v\n", err)
		return ExitLaunchFailed
	}
	return 0
}

// Logs prints the apps' output kept in the pod's journal. It runs the
// stage1 image's own journalctl (dynamically linked against the image's
// libraries, like nspawn), so the host needs no systemd; the journal is
// systemd's own format, which only systemd's tools read reliably.
func Logs(ctx context.Context, c LogsConfig, stdout, stderr io.Writer) error {
	journal := findJournal(filepath.Join(c.JournalRoot, "var", "log", "journal"))
	// A pod that has just started may not have its journal yet: journald
	// starts beside the apps. Following waits for it a while: for the
	// journal file itself, which journald makes after its directory.
	for wait := 0; c.Follow && journal == "" && wait < 200; wait++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		journal = findJournal(filepath.Join(c.JournalRoot, "var", "log", "journal"))
	}
	if journal == "" {
		return ErrNoJournal
	}
	// --all: journalctl would otherwise print a long line's MESSAGE as
	// null in JSON (over 4 KiB) and a binary one as a placeholder.
	args := []string{"--no-pager", "--quiet", "--all", "--directory=" + journal}
	join := false
	switch {
	case c.Output != "":
		args = append(args, "--output="+c.Output)
	case c.Prefix:
		// short: "DATE HOST APP[PID]: line"; the identifier is the app.
		args = append(args, "--output=short-iso")
	default:
		// The messages as written: journalctl's cat mode, but from its
		// JSON, so that a line journald cut at LineMax is whole again.
		args = append(args, "--output=json")
		join = true
	}
	if c.AfterCursor != "" {
		args = append(args, "--after-cursor="+c.AfterCursor)
	}
	if c.Follow {
		// --merge: since systemd 250, --follow alone means --boot too,
		// which fails on a journal that has no entry yet ("No such boot
		// ID"); a pod's journal holds one boot anyway.
		args = append(args, "--follow", "--merge")
	}
	switch {
	case c.Lines > 0:
		args = append(args, fmt.Sprintf("--lines=%d", c.Lines))
	case c.Follow:
		// journalctl --follow starts with the last ten records, and
		// seeks to them racing with records being written: an app's
		// first lines, written as it started, could be skipped.
		args = append(args, "--lines=all")
	}
	for _, a := range c.Apps {
		args = append(args, "SYSLOG_IDENTIFIER="+a)
	}
	var cmd *exec.Cmd
	journalctl := filepath.Join(c.Stage1Rootfs, "usr/bin/journalctl")
	if _, err := os.Stat(journalctl); c.Stage1Rootfs != "" && err == nil {
		cmd = imageCommand(ctx, c.Stage1Rootfs, "journalctl", args)
	} else {
		cmd = exec.CommandContext(ctx, "journalctl", args...)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var joinR, joinW *os.File
	if join {
		var err error
		if joinR, joinW, err = os.Pipe(); err != nil {
			return err
		}
		cmd.Stdout = joinW
	}
	cmd.Env = []string{"SYSTEMD_COLORS=0", "SYSTEMD_PAGER="}
	// journalctl dies with rkt logs, however rkt logs ends (a --follow
	// left behind would run forever). The parent-death signal fires when
	// the thread that started it exits: keep this one until the end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Start()
	if joinW != nil {
		// Ours goes, so that the reader sees the end when journalctl's
		// copy closes.
		joinW.Close()
	}
	if err != nil {
		if joinR != nil {
			joinR.Close()
		}
		return fmt.Errorf("journalctl: %w", err)
	}
	var joined chan error
	if joinR != nil {
		joined = make(chan error, 1)
		go func() {
			err := joinLines(joinR, stdout)
			// A reader gone (rkt logs | head) ends journalctl too.
			joinR.Close()
			joined <- err
		}()
	}
	err = cmd.Wait()
	if joined != nil {
		if jerr := <-joined; err == nil && jerr != nil {
			return fmt.Errorf("journal records: %w", jerr)
		}
	}
	if err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	return nil
}

// joinLines prints the messages of the JSON records on r, each followed
// by a newline but those journald cut at LineMax, whose line the next
// record goes on with. Output is flushed whenever no record is waiting,
// for a reader following the journal.
func joinLines(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(r)
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		var rec journalrecord.Record
		if err := dec.Decode(&rec); err != nil {
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
		bw.Write(rec.Text())
		if !rec.Partial() {
			bw.WriteByte('\n')
		}
		// The decoder leaves the newline after each record unread.
		if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// findJournal returns the directory under dir (journald's machine-ID
// directory) that holds a journal file, or "" if there is none yet.
func findJournal(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.journal"))
	if len(files) == 0 {
		return ""
	}
	return filepath.Dir(files[0])
}

// imageCommand runs usr/bin/NAME of a stage1 root through the root's own
// loader and libraries.
func imageCommand(ctx context.Context, s1, name string, args []string) *exec.Cmd {
	libs := filepath.Join(s1, "usr/lib/x86_64-linux-gnu/systemd") + ":" +
		filepath.Join(s1, "usr/lib/x86_64-linux-gnu") + ":" + filepath.Join(s1, "usr/lib64")
	full := append([]string{"--library-path", libs, "--argv0", name, filepath.Join(s1, "usr/bin", name)}, args...)
	return exec.CommandContext(ctx, filepath.Join(s1, "usr/lib64/ld-linux-x86-64.so.2"), full...)
}
