package mds

import (
	"strings"
	"testing"
)

func TestValidUUIDAndToken(t *testing.T) {
	for s, want := range map[string]bool{
		"0dc29155-e100-4299-a5bd-199e9128a591":  true,
		"0DC29155-e100-4299-a5bd-199e9128a591":  false,
		"0dc29155-e100-4299-a5bd-199e9128a59":   false,
		"0dc29155-e100-4299-a5bd-199e9128a5911": false,
		"0dc29155xe100-4299-a5bd-199e9128a591":  false,
		"0dc29155-e100-4299-a5bd-199e9128a59g":  false,
	} {
		if validUUID(s) != want {
			t.Errorf("validUUID(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{
		strings.Repeat("aZ0_-", 7):    true,
		strings.Repeat("a", 31):       false,
		strings.Repeat("a", 128):      true,
		strings.Repeat("a", 129):      false,
		strings.Repeat("a", 40) + "=": false,
	} {
		if validToken(s) != want {
			t.Errorf("validToken(%q) = %v", s, !want)
		}
	}
}
