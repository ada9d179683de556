//go:build linux && !amd64 && !arm64

package seccomp

// No table for this architecture: every filter fails with
// ErrUnsupportedArch, never silently allows.
var syscallNumbers = map[string]uint32{}

const (
	auditArch = 0
	x32Bit    = 0
)
