package main

import (
	"fmt"
	"sort"
	"strings"
)

// insecureOptions is the set given to --insecure-options.
type insecureOptions uint32

// The security features --insecure-options can turn off.
const (
	insecureImage insecureOptions = 1 << iota
	insecureTLS
	insecureOnDisk
	insecureHTTP
	insecurePubKey
	insecureCapabilities
	insecurePaths
	insecureSeccomp

	insecureAllFetch = insecureImage | insecureTLS | insecureHTTP | insecurePubKey
	insecureAllRun   = insecureOnDisk | insecureCapabilities | insecurePaths | insecureSeccomp
	insecureAll      = insecureAllFetch | insecureAllRun
)

var insecureByName = map[string]insecureOptions{
	"none":         0,
	"image":        insecureImage,
	"tls":          insecureTLS,
	"ondisk":       insecureOnDisk,
	"http":         insecureHTTP,
	"pubkey":       insecurePubKey,
	"capabilities": insecureCapabilities,
	"paths":        insecurePaths,
	"seccomp":      insecureSeccomp,
	"all-fetch":    insecureAllFetch,
	"all-run":      insecureAllRun,
	"all":          insecureAll,
}

func insecureOptionNames() string {
	names := make([]string, 0, len(insecureByName))
	for n := range insecureByName {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Has reports whether every feature in o is disabled.
func (s insecureOptions) Has(o insecureOptions) bool { return s&o == o }

func (s *insecureOptions) String() string {
	var names []string
	for _, n := range []string{"image", "tls", "ondisk", "http", "pubkey", "capabilities", "paths", "seccomp"} {
		if s.Has(insecureByName[n]) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

func (s *insecureOptions) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		o, ok := insecureByName[strings.TrimSpace(strings.ToLower(part))]
		if !ok {
			return fmt.Errorf("unknown insecure option %q (valid: %s)", part, insecureOptionNames())
		}
		*s |= o
	}
	return nil
}

func (s *insecureOptions) Type() string { return "insecureOptions" }
