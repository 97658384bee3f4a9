package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the release, set when building a release with
// -ldflags "-X main.version=v1.2.3". Left empty, the module version that
// `go install …@v1.2.3` records is used, else "devel".
var version string

func init() {
	commands["version"] = command{summary: "print herald's version, commit and Go version", run: runVersion}
}

// buildInfo is what the binary knows of its build.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"` // built from a working tree with changes
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// readBuildInfo gathers the version from -ldflags, the module version and
// the VCS stamp Go records in the binary.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// String is the one line `herald version` prints.
func (b buildInfo) String() string {
	s := "herald " + b.Version
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if b.Modified {
			c += "+changes"
		}
		s += " (commit " + c + ")"
	}
	return s + " " + b.GoVersion + " " + b.Platform
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "\n\nPrints the version, the commit it was built from and the Go version.", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version takes no arguments, got %q", fs.Arg(0))
	}
	_, err := fmt.Fprintln(stdout, readBuildInfo())
	return err
}
