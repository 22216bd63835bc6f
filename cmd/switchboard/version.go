package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version overrides the version read from the build information; set it
// with -ldflags "-X main.version=v1.2.3".
var version string

// buildInfo is what a binary knows about its own build.
type buildInfo struct {
	Version   string // "v1.2.3", a pseudo-version, or "(devel)"
	Revision  string // the VCS revision, when the build recorded it
	Modified  bool   // the work tree had changes
	GoVersion string
}

// readBuildInfo returns the binary's build information, with -ldflags'
// version in place of the module's when one was given.
func readBuildInfo() buildInfo {
	info, ok := debug.ReadBuildInfo()
	return fromBuildInfo(info, ok, version)
}

// fromBuildInfo is readBuildInfo on given values, for tests.
func fromBuildInfo(info *debug.BuildInfo, ok bool, override string) buildInfo {
	var b buildInfo
	if ok && info != nil {
		b.Version, b.GoVersion = info.Main.Version, info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		b.Version = override
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// Short is the version the node reports in the directory and the client
// in its hello: the module version, or "devel" with the short revision.
func (b buildInfo) Short() string {
	v := b.Version
	if v == "(devel)" {
		v = "devel"
		if b.Revision != "" {
			v += "-" + shortRev(b.Revision)
			if b.Modified {
				v += "-dirty"
			}
		}
	}
	return v
}

// String is the line `switchboard version` prints.
func (b buildInfo) String() string {
	var extra []string
	if b.Revision != "" {
		rev := "revision " + shortRev(b.Revision)
		if b.Modified {
			rev += ", modified"
		}
		extra = append(extra, rev)
	}
	if b.GoVersion != "" {
		extra = append(extra, b.GoVersion)
	}
	if len(extra) == 0 {
		return "switchboard " + b.Version
	}
	return fmt.Sprintf("switchboard %s (%s)", b.Version, strings.Join(extra, ", "))
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
