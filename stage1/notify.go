package stage1

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rktng/rkt/pkg/pod"
)

// Readiness (sd_notify) for pods run as systemd services of Type=notify.
// When rkt runs with $NOTIFY_SOCKET, the run entrypoint gives nspawn a
// socket of its own with --notify-ready=yes: nspawn then reports READY=1
// once the pod's systemd has finished starting, which is once every app
// unit has started, and for an app that supports sd_notify (the appc
// image annotation below) once that app has said READY=1 itself. The run
// entrypoint, which is the service's main process (rkt exec'd it), passes
// READY, STATUS and STOPPING on to the service manager; nspawn's own
// fields (its leader's PID) stay here.

// annotationNotify, on an app's image (or on the app in the pod
// manifest), says the app sends sd_notify READY=1 when it is ready.
const annotationNotify = "appc.io/executor/supports-systemd-notify"

// podNotifySocket is the pod's systemd's notification socket, which
// systemd gives a notify-capable app's unit.
const podNotifySocket = "/run/systemd/notify"

// supportsNotify says whether app's image or its entry in the pod
// manifest has annotationNotify set to true.
func supportsNotify(podDir string, ra *schema.RuntimeApp) bool {
	truth := func(v string, ok bool) bool {
		b, err := strconv.ParseBool(v)
		return ok && err == nil && b
	}
	if truth(ra.Annotations.Get(annotationNotify)) {
		return true
	}
	var im schema.ImageManifest
	b, err := os.ReadFile(pod.AppImageManifestPath(podDir, ra.Name.String()))
	if err != nil || im.UnmarshalJSON(b) != nil {
		return false
	}
	return truth(im.Annotations.Get(annotationNotify))
}

// notifyRelay passes the pod's readiness to the service manager that runs
// rkt, if any.
type notifyRelay struct {
	conn *net.UnixConn
	// Path is the socket to give nspawn as $NOTIFY_SOCKET.
	Path string
}

// startNotifyRelay listens on a socket in the pod directory when this
// process has $NOTIFY_SOCKET; it returns nil when it has not.
func startNotifyRelay(podDir string) (*notifyRelay, error) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil, nil
	}
	p, err := filepath.Abs(filepath.Join(podDir, "notify"))
	if err != nil {
		return nil, err
	}
	if len(p) >= 108 {
		// Past sun_path's size: a name in the abstract namespace of this
		// network namespace, where nspawn runs too.
		p = "@rkt-notify-" + filepath.Base(podDir)
	} else {
		_ = os.Remove(p)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	r := &notifyRelay{conn: conn, Path: p}
	go r.forward()
	return r, nil
}

// forward passes READY, STATUS and STOPPING on, until the socket closes.
func (r *notifyRelay) forward() {
	buf := make([]byte, 4096)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			return
		}
		var keep []string
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if l == "READY=1" || l == "STOPPING=1" || strings.HasPrefix(l, "STATUS=") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 0 {
			_, _ = daemon.SdNotify(false, strings.Join(keep, "\n"))
		}
	}
}

func (r *notifyRelay) close() {
	if r == nil {
		return
	}
	r.conn.Close()
	if !strings.HasPrefix(r.Path, "@") {
		_ = os.Remove(r.Path)
	}
}
