package stage1

import (
	"bytes"
	"strings"
	"sync"
	"testing"
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

	// A line with no end is cut where journald would cut it.
	out.Reset()
	long := &journalLines{w: &out, mu: &mu, prefix: []byte("<6>")}
	long.add([]byte(strings.Repeat("x", journalLineMax+10) + "\nafter\n"))
	long.close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || len(lines[0]) != journalLineMax || lines[1] != "<6>"+strings.Repeat("x", 13) || lines[2] != "<6>after" {
		t.Fatalf("long line: %d lines, first %d bytes, then %q", len(lines), len(lines[0]), lines[1:])
	}
}
