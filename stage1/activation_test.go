package stage1

import (
	"errors"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

func activationPod(ports map[string][]uint) *schema.PodManifest {
	pm := &schema.PodManifest{}
	for _, name := range []string{"a", "b", "c"} {
		ps, ok := ports[name]
		if !ok {
			continue
		}
		app := &types.App{Exec: types.Exec{"/x"}, User: "0", Group: "0"}
		for _, p := range ps {
			app.Ports = append(app.Ports, types.Port{Name: "p", Protocol: "tcp", Port: p, Count: 1, SocketActivated: true})
		}
		pm.Apps = append(pm.Apps, schema.RuntimeApp{Name: types.ACName(name), App: app})
	}
	return pm
}

func TestAssignSockets(t *testing.T) {
	s80, s81 := passedSocket{addr: "0.0.0.0:80", port: 80}, passedSocket{addr: "0.0.0.0:81", port: 81}
	// One app with socket-activated ports takes every socket.
	got, err := assignSockets(activationPod(map[string][]uint{"a": {8080}, "b": nil}), []passedSocket{s80, s81})
	if err != nil || len(got["a"]) != 2 || len(got["b"]) != 0 {
		t.Errorf("one app: %v %v", got, err)
	}
	// Several: by port number.
	got, err = assignSockets(activationPod(map[string][]uint{"a": {80}, "b": {81}}), []passedSocket{s80, s81})
	if err != nil || len(got["a"]) != 1 || got["a"][0].port != 80 || len(got["b"]) != 1 || got["b"][0].port != 81 {
		t.Errorf("by port: %v %v", got, err)
	}
	if _, err := assignSockets(activationPod(map[string][]uint{"a": {80}, "b": {82}}), []passedSocket{s81}); !errors.Is(err, errNoActivatedApp) {
		t.Errorf("no app with the port: %v", err)
	}
	if _, err := assignSockets(activationPod(map[string][]uint{"a": nil}), []passedSocket{s80}); !errors.Is(err, errNoActivatedApp) {
		t.Errorf("no socket-activated app: %v", err)
	}
	if got, err := assignSockets(activationPod(map[string][]uint{"a": nil}), nil); err != nil || got != nil {
		t.Errorf("no sockets: %v %v", got, err)
	}
}
