package stage1

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rktng/rkt/pkg/pod"
)

func TestCopyUntilDetach(t *testing.T) {
	for _, c := range []struct {
		name     string
		chunks   []string
		want     string
		detached bool
	}{
		{"no keys", []string{"abc", "def"}, "abcdef", false},
		{"detach", []string{"ab\x10\x11cd"}, "ab", true},
		{"detach across reads", []string{"ab\x10", "\x11cd"}, "ab", true},
		{"lone ctrl-p goes through", []string{"a\x10b"}, "a\x10b", false},
		{"ctrl-p ctrl-p ctrl-q", []string{"\x10\x10\x11z"}, "\x10", true},
		{"ctrl-p at the end of input", []string{"a\x10"}, "a", false},
	} {
		var out bytes.Buffer
		detached := copyUntilDetach(&out, &chunkReader{chunks: c.chunks})
		if out.String() != c.want || detached != c.detached {
			t.Errorf("%s: got %q (detached %v), want %q (%v)", c.name, out.String(), detached, c.want, c.detached)
		}
	}
}

type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

func TestJournalLinesStripCR(t *testing.T) {
	var b bytes.Buffer
	j := &journalLines{w: &b, mu: new(sync.Mutex), prefix: []byte("<6>"), stripCR: true}
	j.add([]byte("one\r\ntw"))
	j.add([]byte("o\r\nthree\n"))
	j.close()
	if got := b.String(); got != "<6>one\n<6>two\n<6>three\n" {
		t.Errorf("got %q", got)
	}
}

func TestStreamsRoundTrip(t *testing.T) {
	in := pod.Streams{Stdin: pod.StreamTTY, Stdout: pod.StreamTTY, Stderr: pod.StreamStream}
	out, err := parseStreams(formatStreams(in))
	if err != nil || out != in {
		t.Fatalf("got %+v, %v", out, err)
	}
	in.StdinOnce = true
	if out, err := parseStreams(formatStreams(in)); err != nil || out != in {
		t.Fatalf("with once: got %+v, %v", out, err)
	}
	if _, err := parseStreams("stream,log"); err == nil {
		t.Error("two modes accepted")
	}
}

// A client that stops reading is dropped; the others and the sender go on.
func TestHubDropsSlowClient(t *testing.T) {
	h := newHub()
	slowServer, slowClient := net.Pipe()
	fastServer, fastClient := net.Pipe()
	h.add(slowServer, func() { _, _ = io.Copy(io.Discard, slowServer) }, true)
	h.add(fastServer, func() { _, _ = io.Copy(io.Discard, fastServer) }, true)
	// Each client is told first that it is registered.
	b := make([]byte, 1)
	if _, err := io.ReadFull(fastClient, b); err != nil || b[0] != attachAck {
		t.Fatalf("first byte %v, %v: want the ack", b, err)
	}
	// The sender waits for the reading client after each write, so only
	// the other one falls behind.
	done := make(chan error)
	go func() {
		b := make([]byte, 1)
		for i := 0; i < subscriberQueue*2; i++ {
			h.send([]byte("x"))
			if _, err := io.ReadFull(fastClient, b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the reading client: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("send blocked on a client that does not read")
	}
	h.mu.Lock()
	n := len(h.subs)
	h.mu.Unlock()
	if n != 1 {
		t.Errorf("%d subscribers, want the reading one only", n)
	}
	h.send([]byte("end"))
	h.close()
	rest, _ := io.ReadAll(fastClient)
	if string(rest) != "end" {
		t.Errorf("after close the reading client got %q, want what was queued", rest)
	}
	slowClient.Close()
	h.wait()
}
