package pod

import (
	"errors"
	"reflect"
	"testing"

	"github.com/appc/spec/schema/types"
)

func streamAnnotations(stdin, stdout, stderr string) types.Annotations {
	var a types.Annotations
	for n, v := range map[string]string{AnnotationStdin: stdin, AnnotationStdout: stdout, AnnotationStderr: stderr} {
		if v != "" {
			a.Set(types.ACIdentifier(n), v)
		}
	}
	return a
}

func TestAppStreams(t *testing.T) {
	for _, c := range []struct {
		stdin, stdout, stderr string
		want                  []string // endpoints; nil with bad
		bad                   bool
	}{
		{"", "", "", nil, false},
		{"stream", "", "", []string{"stdin"}, false},
		{"stream", "stream", "stream", []string{"stdin", "stdout", "stderr"}, false},
		{"", "stream", "log", []string{"stdout"}, false},
		{"tty", "tty", "", []string{"tty"}, false},
		{"tty", "tty", "tty", []string{"tty"}, false},
		{"tty", "tty", "stream", []string{"tty", "stderr"}, false},
		{"tty", "log", "", nil, true},
		{"null", "tty", "", nil, true},
		{"stream", "stream", "tty", nil, true},
		{"log", "", "", nil, true},
		{"", "null", "", nil, true},
		{"", "", "interactive", nil, true},
	} {
		s, err := AppStreams(streamAnnotations(c.stdin, c.stdout, c.stderr))
		if c.bad {
			if !errors.Is(err, ErrBadStreams) {
				t.Errorf("%q/%q/%q: got %v, want ErrBadStreams", c.stdin, c.stdout, c.stderr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q/%q/%q: %v", c.stdin, c.stdout, c.stderr, err)
			continue
		}
		if got := s.Endpoints(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q/%q/%q: endpoints %v, want %v", c.stdin, c.stdout, c.stderr, got, c.want)
		}
		if s.Attachable() != (len(c.want) > 0) {
			t.Errorf("%q/%q/%q: Attachable %v", c.stdin, c.stdout, c.stderr, s.Attachable())
		}
	}
}

func TestParseStreamMode(t *testing.T) {
	if _, err := ParseStreamMode("stdin", "log"); err == nil {
		t.Error("stdin accepted log")
	}
	if _, err := ParseStreamMode("stdout", "null"); err == nil {
		t.Error("stdout accepted null")
	}
	if m, err := ParseStreamMode("stderr", "tty"); err != nil || m != StreamTTY {
		t.Errorf("stderr=tty: %v %v", m, err)
	}
	if StreamAnnotation("stderr") != AnnotationStderr {
		t.Error("StreamAnnotation(stderr)")
	}
}

func TestStdinOnce(t *testing.T) {
	a := streamAnnotations("stream", "", "")
	a.Set(AnnotationStdinOnce, "true")
	if s, err := AppStreams(a); err != nil || !s.StdinOnce {
		t.Errorf("stream + once: %+v %v", s, err)
	}
	b := streamAnnotations("", "stream", "")
	b.Set(AnnotationStdinOnce, "true")
	if _, err := AppStreams(b); !errors.Is(err, ErrBadStreams) {
		t.Errorf("once without input: %v", err)
	}
	a.Set(AnnotationStdinOnce, "yes")
	if _, err := AppStreams(a); !errors.Is(err, ErrBadStreams) {
		t.Errorf("once=yes: %v", err)
	}
}
