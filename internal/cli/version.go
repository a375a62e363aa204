package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func versionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print airlock's module version, VCS revision and Go version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			info, _ := debug.ReadBuildInfo()
			return writeVersion(env.Stdout, info)
		},
	}
}

// writeVersion prints what a bug report needs from the build: the module
// version (a tag when installed with `go install …@vX`, "(devel)" from a
// checkout), the commit it was built from when the go command stamped it
// (not with -buildvcs=false or outside a repository), and the toolchain.
func writeVersion(w io.Writer, info *debug.BuildInfo) error {
	version, revision, modified, when := "(unknown)", "unknown", "", ""
	goVersion := runtime.Version()
	if info != nil {
		version = info.Main.Version
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				when = " " + s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	_, err := fmt.Fprintf(w, "airlock %s\nrevision %s%s%s\n%s %s/%s\n", version, revision, when, modified, goVersion, runtime.GOOS, runtime.GOARCH)
	return err
}
