package main

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	out, stderr, code := cli(t, "version")
	if code != 0 || stderr != "" || !regexp.MustCompile(`^herald \S+ .*go1\.\d+`).MatchString(out) || !strings.Contains(out, runtime.GOOS) {
		t.Fatalf("herald version: exit %d, %q %q", code, out, stderr)
	}
	// A release build sets the version with -ldflags "-X main.version=…".
	saved := version
	t.Cleanup(func() { version = saved })
	version = "v1.2.3"
	if out, _, _ := cli(t, "version"); !strings.HasPrefix(out, "herald v1.2.3 ") {
		t.Fatalf("with main.version set: %q", out)
	}
	if _, stderr, code := cli(t, "version", "extra"); code != 2 || !strings.Contains(stderr, "no arguments") {
		t.Fatalf("herald version extra: exit %d, %q", code, stderr)
	}
}
