package stage0

import "testing"

func TestCheckPrivateUsers(t *testing.T) {
	for _, ok := range []string{"", "auto", "0", "65536", "65536:65536"} {
		if err := checkPrivateUsers(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"bogus", "-1", "1:", "1:0", ":5", "1:2:3", "pick"} {
		if err := checkPrivateUsers(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
