package main

import "testing"

func TestUnoctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b",
		`/plain`:  "/plain",
		`/end\04`: `/end\04`,
		`\134x`:   `\x`,
	} {
		if got := unoctal(in); got != want {
			t.Errorf("unoctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCapNames(t *testing.T) {
	for in, want := range map[string]string{
		"0000000000000000": "",
		"0000000000200001": "CAP_CHOWN,CAP_SYS_ADMIN",
		"0000008000000000": "CAP_BPF",
		"8000000000000000": "CAP_63",
		"garbage":          "",
	} {
		if got := capNames(in); got != want {
			t.Errorf("capNames(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := escape("a\\b\nc"); got != `a\\b\nc` {
		t.Errorf("escape = %q", got)
	}
}
