package caps

import (
	"errors"
	"reflect"
	"sort"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Cap{"CAP_NET_ADMIN": 12, "net_admin": 12, " cap_chown ": 0, "CAP_CHECKPOINT_RESTORE": 40} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := Parse("CAP_BOGUS"); !errors.Is(err, ErrUnknownCapability) {
		t.Fatalf("want ErrUnknownCapability, got %v", err)
	}
}

func TestSetNames(t *testing.T) {
	s, err := ParseSet(Default())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	sort.Strings(want)
	if got := s.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	if s.Has(21) {
		t.Fatal("default set has CAP_SYS_ADMIN")
	}
	if len(want) != 14 {
		t.Fatalf("default set has %d capabilities, want appc's 14", len(want))
	}
}

func TestThreadState(t *testing.T) {
	st, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	if st.Effective&^st.Permitted != 0 {
		t.Fatalf("effective %x outside permitted %x", st.Effective, st.Permitted)
	}
	if LastCap() < 36 {
		t.Fatalf("LastCap %d: probing failed", LastCap())
	}
	if b := Bounding(); b == 0 && st.Permitted != 0 {
		t.Fatal("empty bounding set read")
	}
}
