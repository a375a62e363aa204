package envoydriver

import (
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
)

// DefaultEnvoyVersion is the Envoy release the stand-in plays when
// Options.EnvoyVersion / ADSOptions.EnvoyVersion is empty.
const DefaultEnvoyVersion = "1.37.0"

// envoyVersion is a parsed major.minor.patch release.
type envoyVersion struct{ major, minor, patch int }

// parseEnvoyVersion reads "1.37.0" (a leading "v" is allowed, as in
// Envoy's release tags); empty means DefaultEnvoyVersion.
func parseEnvoyVersion(s string) (envoyVersion, error) {
	if s == "" {
		s = DefaultEnvoyVersion
	}
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) != 3 {
		return envoyVersion{}, fmt.Errorf("envoy version %q: want major.minor.patch, e.g. %s", s, DefaultEnvoyVersion)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return envoyVersion{}, fmt.Errorf("envoy version %q: %q is not a number", s, p)
		}
		n[i] = v
	}
	return envoyVersion{n[0], n[1], n[2]}, nil
}

// atLeast reports whether v is major.minor or later.
func (v envoyVersion) atLeast(major, minor int) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

func (v envoyVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// localRepliesToExtProc reports whether ext_proc processes local replies
// (the response headers of a reply Envoy generates itself). Envoy 1.34–1.36
// do not: the ext_proc filter skips a local reply; 1.37 sends it to the
// processor like any response again (envoyproxy/envoy#41769, "ext_proc:
// re-enable sending local replies to the ext_proc server", merged
// 2025-10-29; source/extensions/filters/http/ext_proc/ext_proc.cc).
func (v envoyVersion) localRepliesToExtProc() bool { return v.atLeast(1, 37) }

// envoyNode is the node Envoy sends: the bootstrap's node, with
// user_agent_name "envoy" and user_agent_build_version the running
// release when the bootstrap left them unset
// (source/server/server.cc InstanceBase::initializeOrThrow: "Default to
// \"envoy\" if unset", "Default to the internal server version").
func envoyNode(n *corev3.Node, v envoyVersion) *corev3.Node {
	out := proto.Clone(n).(*corev3.Node)
	if out.GetUserAgentName() == "" {
		out.UserAgentName = "envoy"
	}
	if out.GetUserAgentBuildVersion().GetVersion() == nil {
		out.UserAgentVersionType = &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: uint32(v.major), MinorNumber: uint32(v.minor), Patch: uint32(v.patch)},
		}}
	}
	return out
}
