package pod

import (
	"errors"
	"fmt"
	"strings"

	"github.com/appc/spec/schema/types"
)

// An app's standard streams are set by three annotations of its
// RuntimeApp, named as rkt named them, so that stage0 (the --stdin,
// --stdout and --stderr flags) and a stage1 (which wires the streams and
// serves `rkt attach`) agree on them.
const (
	AnnotationStdin  = "coreos.com/rkt/stage2/stdin"
	AnnotationStdout = "coreos.com/rkt/stage2/stdout"
	AnnotationStderr = "coreos.com/rkt/stage2/stderr"
	// AnnotationStdinOnce ("true") is ours: the app's input ends when
	// the first client attached to it leaves (the CRI's stdin_once,
	// `kubectl run -i --rm`).
	AnnotationStdinOnce = "rktng.io/rkt/stage2/stdin-once"
)

// StreamMode is where one of an app's standard streams goes.
type StreamMode string

// The stream modes. Output is always kept in the pod's log; "stream" and
// "tty" make a stream attachable as well.
const (
	// StreamNull: no input (stdin's default).
	StreamNull StreamMode = "null"
	// StreamLog: output goes to the pod's log only (stdout's and
	// stderr's default).
	StreamLog StreamMode = "log"
	// StreamStream: the stream is a pipe that `rkt attach` clients
	// write to (stdin) or read from (stdout, stderr) while the app runs.
	StreamStream StreamMode = "stream"
	// StreamTTY: the app gets a pseudo-terminal of its own, which `rkt
	// attach` clients share.
	StreamTTY StreamMode = "tty"
)

// Streams are an app's three stream modes.
type Streams struct {
	Stdin, Stdout, Stderr StreamMode
	// StdinOnce: the app's input (stream or tty) ends, and a terminal
	// hangs up, when the first client attached to it leaves.
	StdinOnce bool
}

// ErrBadStreams: the stream annotations of an app are invalid.
var ErrBadStreams = errors.New("bad stream modes")

// The names of the attach endpoints (Streams.Endpoints).
const (
	EndpointStdin  = "stdin"
	EndpointStdout = "stdout"
	EndpointStderr = "stderr"
	EndpointTTY    = "tty"
)

// AppStreams reads an app's stream modes from its annotations, with the
// defaults for those not set, and checks them: stdin is null, stream or
// tty; stdout and stderr are log, stream or tty; a terminal is for input
// and output together (stdin and stdout both tty, or neither), and stderr
// may share it.
func AppStreams(a types.Annotations) (Streams, error) {
	s := Streams{Stdin: StreamNull, Stdout: StreamLog, Stderr: StreamLog}
	for _, f := range []struct {
		stream string
		into   *StreamMode
	}{
		{EndpointStdin, &s.Stdin},
		{EndpointStdout, &s.Stdout},
		{EndpointStderr, &s.Stderr},
	} {
		name := StreamAnnotation(f.stream)
		v, ok := a.Get(name)
		if !ok {
			continue
		}
		m, err := ParseStreamMode(f.stream, v)
		if err != nil {
			return s, fmt.Errorf("%w: %s=%q: %v", ErrBadStreams, name, v, err)
		}
		*f.into = m
	}
	if v, ok := a.Get(AnnotationStdinOnce); ok {
		switch v {
		case "true":
			s.StdinOnce = true
		case "false":
		default:
			return s, fmt.Errorf("%w: %s=%q: not true or false", ErrBadStreams, AnnotationStdinOnce, v)
		}
	}
	if s.StdinOnce && s.Stdin == StreamNull {
		return s, fmt.Errorf("%w: stdin-once needs stdin to be stream or tty", ErrBadStreams)
	}
	if (s.Stdin == StreamTTY) != (s.Stdout == StreamTTY) {
		return s, fmt.Errorf("%w: stdin is %s and stdout %s: a terminal is for both or neither", ErrBadStreams, s.Stdin, s.Stdout)
	}
	if s.Stderr == StreamTTY && s.Stdout != StreamTTY {
		return s, fmt.Errorf("%w: stderr can share a terminal only with stdin and stdout", ErrBadStreams)
	}
	return s, nil
}

// ParseStreamMode checks one --stdin/--stdout/--stderr value for the
// stream named (stdin, stdout or stderr).
func ParseStreamMode(stream, v string) (StreamMode, error) {
	// Input is discarded or given; output is kept in the log at least.
	valid := []StreamMode{StreamLog, StreamStream, StreamTTY}
	if stream == EndpointStdin {
		valid = []StreamMode{StreamNull, StreamStream, StreamTTY}
	}
	m := StreamMode(v)
	names := make([]string, len(valid))
	for i, ok := range valid {
		if m == ok {
			return m, nil
		}
		names[i] = string(ok)
	}
	return "", fmt.Errorf("not one of %s", strings.Join(names, ", "))
}

// StreamAnnotation is the annotation of stream (stdin, stdout or stderr).
func StreamAnnotation(stream string) string {
	return map[string]string{EndpointStdin: AnnotationStdin, EndpointStdout: AnnotationStdout, EndpointStderr: AnnotationStderr}[stream]
}

// Attachable says whether `rkt attach` has anything to attach to.
func (s Streams) Attachable() bool { return len(s.Endpoints()) > 0 }

// Endpoints are the app's attach endpoints: "tty" for a terminal, and
// "stdin", "stdout", "stderr" for each stream in stream mode.
func (s Streams) Endpoints() []string {
	var e []string
	if s.Stdout == StreamTTY {
		e = append(e, EndpointTTY)
	}
	if s.Stdin == StreamStream {
		e = append(e, EndpointStdin)
	}
	if s.Stdout == StreamStream {
		e = append(e, EndpointStdout)
	}
	if s.Stderr == StreamStream {
		e = append(e, EndpointStderr)
	}
	return e
}

// AnnotationPrivileged ("true"), on an app, makes it privileged, as
// Docker's --privileged and the CRI's privileged containers: every
// capability, no seccomp filter, nothing of /proc masked, the host's
// devices and a writable /sys. Only a pod started privileged
// (RuntimeConfig.Privileged) runs such apps.
const AnnotationPrivileged = "rktng.io/rkt/stage2/privileged"

// AppPrivileged says whether an app's annotations make it privileged.
func AppPrivileged(a types.Annotations) bool {
	v, ok := a.Get(AnnotationPrivileged)
	return ok && v == "true"
}

// AnnotationPIDNamespace, on an app, is "private" for an app that runs in
// a PID namespace of its own (seeing only its processes, as a Kubernetes
// container does unless its pod shares one), or "pod" (the default: the
// pod's, which all its apps share).
const AnnotationPIDNamespace = "rktng.io/rkt/stage2/pid-namespace"

// PID namespace modes of AnnotationPIDNamespace.
const (
	PIDNamespacePod     = "pod"
	PIDNamespacePrivate = "private"
)

// AppPrivatePIDNamespace says whether an app's annotations give it a PID
// namespace of its own; a value other than pod or private is an error.
func AppPrivatePIDNamespace(a types.Annotations) (bool, error) {
	v, ok := a.Get(AnnotationPIDNamespace)
	switch {
	case !ok || v == PIDNamespacePod:
		return false, nil
	case v == PIDNamespacePrivate:
		return true, nil
	}
	return false, fmt.Errorf("annotation %s=%s: want %s or %s", AnnotationPIDNamespace, v, PIDNamespacePod, PIDNamespacePrivate)
}
