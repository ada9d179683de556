package stage1

import (
	"reflect"
	"testing"
)

func TestParseAppArgs(t *testing.T) {
	a, err := ParseAppArgs([]string{"--app=web", "--uuid=U", "--debug", "--disable-seccomp"})
	if err != nil {
		t.Fatal(err)
	}
	want := &AppArgs{App: "web", UUID: "U", Debug: true, DisableSeccomp: true}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("got %+v, want %+v", a, want)
	}
	for _, bad := range [][]string{{"--uuid=U"}, {"--app=Not_An_ACName"}, {"--app=web", "--bogus"}} {
		if _, err := ParseAppArgs(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
