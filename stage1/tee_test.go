package stage1

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJournalLines(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	stdout := &journalLines{w: &out, mu: &mu, prefix: []byte("<6>")}
	stderr := &journalLines{w: &out, mu: &mu, prefix: []byte("<3>")}

	stdout.add([]byte("one\ntw"))
	stderr.add([]byte("oops\n<4>warn"))
	stdout.add([]byte("o\n<"))
	stderr.add([]byte("ing\n"))
	stdout.add([]byte("5>not a prefix at a cut\n"))
	stdout.add([]byte("no end"))
	stdout.close()
	stderr.close()
	want := "<6>one\n<3>oops\n<6>two\n<4>warning\n<6><5>not a prefix at a cut\n<6>no end\n"
	if out.String() != want {
		t.Fatalf("journal got\n%q\nwant\n%q", out.String(), want)
	}

	// A long line is cut into pieces of exactly journald's LineMax,
	// prefix included and no newline, which journald records as cut.
	out.Reset()
	long := &journalLines{w: &out, mu: &mu, prefix: []byte("<6>")}
	long.add([]byte(strings.Repeat("x", journalLineMax+10) + "\nafter\n"))
	long.close()
	want = "<6>" + strings.Repeat("x", journalLineMax-3) + "<6>" + strings.Repeat("x", 13) + "\n<6>after\n"
	if out.String() != want {
		t.Fatalf("long line: got %d bytes, want %d; after the first piece: %q", out.Len(), len(want), out.String()[min(out.Len(), journalLineMax):])
	}
}

// The pieces of a long line are held back until it ends, so the other
// stream's lines come between lines, never inside one; a line begun in
// one read and ended in another is cut where journald cuts.
func TestJournalLinesKeepPiecesTogether(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	stdout := &journalLines{w: &out, mu: &mu, prefix: []byte("<6>")}
	stderr := &journalLines{w: &out, mu: &mu, prefix: []byte("<3>")}
	stdout.add([]byte(strings.Repeat("a", 40000)))
	stdout.add([]byte(strings.Repeat("a", 60000)))
	stderr.add([]byte("between\n"))
	stdout.add([]byte(strings.Repeat("a", 10000) + "\n"))
	stdout.close()
	stderr.close()
	piece := "<6>" + strings.Repeat("a", journalLineMax-3)
	want := "<3>between\n" + piece + piece + "<6>" + strings.Repeat("a", 110000-2*(journalLineMax-3)) + "\n"
	if out.String() != want {
		t.Fatalf("got %d bytes starting %.20q, want %d starting %.20q", out.Len(), out.String(), len(want), want)
	}

	// Beyond journalPiecesMax the pieces go as they come.
	out.Reset()
	stdout.add([]byte(strings.Repeat("b", journalPiecesMax+journalLineMax)))
	if out.Len() < journalPiecesMax || out.Len()%journalLineMax != 0 {
		t.Fatalf("a very long line held back %d bytes", journalPiecesMax+journalLineMax-out.Len())
	}
	stdout.close()
	if !strings.HasSuffix(out.String(), "b\n") {
		t.Fatal("close did not write the rest")
	}
}

// rkt logs prints the messages of the journal's records, a line that
// journald cut at LineMax whole again.
func TestJoinLines(t *testing.T) {
	in := `{"MESSAGE":"one"}
{"MESSAGE":"aaa","_LINE_BREAK":"line-max"}
{"MESSAGE":"bbb","_LINE_BREAK":"line-max"}
{"MESSAGE":"c"}
{"MESSAGE":[98,105,110,255]}
`
	var out bytes.Buffer
	if err := joinLines(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if want := "one\naaabbbc\nbin\xff\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	if err := joinLines(strings.NewReader(`{"MESSAGE":`), &out); err == nil {
		t.Fatal("a cut record went unnoticed")
	}
}

// A follower sees each record as soon as it is read, not when the next
// one comes.
func TestJoinLinesFlushes(t *testing.T) {
	r, w := io.Pipe()
	out := make(chan string, 1)
	pw := &lineSignal{c: out}
	go func() { _ = joinLines(r, pw) }()
	if _, err := w.Write([]byte(`{"MESSAGE":"first"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-out:
		if got != "first\n" {
			t.Fatalf("got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the record was held back")
	}
	w.Close()
}

type lineSignal struct{ c chan string }

func (l *lineSignal) Write(p []byte) (int, error) {
	l.c <- string(p)
	return len(p), nil
}
