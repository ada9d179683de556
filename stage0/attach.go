package stage0

import (
	"errors"
	"fmt"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/pod"
)

// EntrypointAttach is the stage1 entrypoint behind `rkt attach`, rkt's
// name for it (coreos.com/rkt/stage1/attach). Ours is called, in the
// running pod's mount namespace with the pod directory as working
// directory, as
//
//	attach [--mode=MODE] APP
//
// where MODE is "list" (print the app's endpoints, one a line), "auto"
// (the default: every endpoint the app has) or a comma-separated list of
// endpoints (tty, stdin, stdout, stderr). It copies between its own
// standard streams and the app's until the app ends or the user detaches.
const EntrypointAttach = "attach"

// ErrNotAttachable: the app has no stream `rkt attach` can reach, or the
// pod's stage1 cannot attach at all.
var ErrNotAttachable = errors.New("not attachable")

// checkStreams refuses stream modes that are invalid, that the pod's
// stage1 cannot serve (it has no attach entrypoint), or that --interactive
// would contradict (the app's streams are then the user's terminal).
func checkStreams(stage1 *schema.ImageManifest, interactive bool, apps ...*schema.RuntimeApp) error {
	for _, ra := range apps {
		s, err := pod.AppStreams(ra.Annotations)
		if err != nil {
			return fmt.Errorf("%w: app %s: %v", ErrBadPod, ra.Name, err)
		}
		if !s.Attachable() {
			continue
		}
		if interactive {
			return fmt.Errorf("%w: app %s: --interactive gives the app this terminal; --stdin/--stdout/--stderr=stream|tty are for `rkt attach`", ErrBadPod, ra.Name)
		}
		if _, err := Entrypoint(stage1, EntrypointAttach); err != nil {
			return fmt.Errorf("%w: app %s: --stdin/--stdout/--stderr=%s need `rkt attach`, which stage1 %s does not offer", ErrNotAttachable, ra.Name, streamsWanted(s), stage1.Name)
		}
	}
	return nil
}

// streamsWanted names the attachable modes of s, for a message.
func streamsWanted(s pod.Streams) string {
	seen := map[pod.StreamMode]bool{}
	var out []string
	for _, m := range []pod.StreamMode{s.Stdin, s.Stdout, s.Stderr} {
		if (m == pod.StreamStream || m == pod.StreamTTY) && !seen[m] {
			seen[m] = true
			out = append(out, string(m))
		}
	}
	return strings.Join(out, ",")
}

// AttachConfig is what `rkt attach` asks of a running pod.
type AttachConfig struct {
	// App is the app to attach to; empty picks the pod's only
	// attachable app.
	App string
	// Mode is "list", "auto" or a comma-separated list of endpoints.
	Mode string
}

// AttachApp resolves which app of the pod `rkt attach` means and checks
// that the mode asks only for what it has: it returns the app's name.
func AttachApp(pm *schema.PodManifest, cfg AttachConfig) (string, error) {
	var candidates []string
	streams := map[string]pod.Streams{}
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		if cfg.App != "" && name != cfg.App {
			continue
		}
		s, err := pod.AppStreams(ra.Annotations)
		if err != nil {
			return "", fmt.Errorf("app %s: %w", name, err)
		}
		if cfg.App != "" {
			if !s.Attachable() {
				return "", fmt.Errorf("%w: app %s has no stream to attach to (add it with --stdin, --stdout or --stderr set to stream or tty)", ErrNotAttachable, name)
			}
			return name, checkAttachMode(name, s, cfg.Mode)
		}
		if s.Attachable() {
			candidates = append(candidates, name)
			streams[name] = s
		}
	}
	switch {
	case cfg.App != "":
		return "", fmt.Errorf("the pod has no app %q", cfg.App)
	case len(candidates) == 0:
		return "", fmt.Errorf("%w: no app of the pod has a stream to attach to (add one with --stdin, --stdout or --stderr set to stream or tty)", ErrNotAttachable)
	case len(candidates) > 1:
		return "", fmt.Errorf("the pod has several apps to attach to (%s): choose one with --app", strings.Join(candidates, ", "))
	}
	return candidates[0], checkAttachMode(candidates[0], streams[candidates[0]], cfg.Mode)
}

// checkAttachMode refuses a mode naming an endpoint the app lacks.
func checkAttachMode(app string, s pod.Streams, mode string) error {
	if mode == "" || mode == "auto" || mode == "list" {
		return nil
	}
	have := map[string]bool{}
	for _, e := range s.Endpoints() {
		have[e] = true
	}
	asked := strings.Split(mode, ",")
	for _, e := range asked {
		switch e {
		case pod.EndpointTTY, pod.EndpointStdin, pod.EndpointStdout, pod.EndpointStderr:
		default:
			return fmt.Errorf("--mode=%s: %q is not list, auto, tty, stdin, stdout or stderr", mode, e)
		}
	}
	for _, e := range asked {
		if !have[e] {
			return fmt.Errorf("%w: app %s has no %s endpoint (it has %s)", ErrNotAttachable, app, e, strings.Join(s.Endpoints(), ", "))
		}
	}
	return nil
}

// Attach replaces this process with the pod's stage1 attach entrypoint
// for app (see EntrypointAttach). It returns only on failure.
func Attach(p *pod.Pod, app, mode string) error {
	if _, err := podEntrypoint(p.Dir, EntrypointAttach); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAttachable, err)
	}
	args := []string{}
	if mode != "" {
		args = append(args, "--mode="+mode)
	}
	return ExecEntrypoint(p, EntrypointAttach, append(args, app))
}
