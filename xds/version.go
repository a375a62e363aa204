package xds

import (
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// MinEnvoyVersion is the oldest Envoy airlock serves (docs/xds.md):
//   - scoped route configurations with the route configuration inline
//     (envoyproxy/envoy#36703) first shipped in 1.33.0 and were not
//     backported (1.32.x answers "route_configuration_name is empty");
//   - ext_proc sends protocol_config, which airlock's ext_proc reads, from
//     1.34.0.
const MinEnvoyVersion = "1.34.0"

// floorReason says why the floor is where it is, for the refusal message.
const floorReason = "inline scoped route configurations need 1.33, ext_proc protocol_config needs 1.34"

// version is an Envoy release, major.minor.patch.
type version struct{ major, minor, patch uint32 }

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

func (v version) less(w version) bool {
	if v.major != w.major {
		return v.major < w.major
	}
	if v.minor != w.minor {
		return v.minor < w.minor
	}
	return v.patch < w.patch
}

// parseVersion reads "1.34.0" (a "v" prefix and a missing patch are
// accepted: "v1.34" is 1.34.0).
func parseVersion(s string) (version, error) {
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return version{}, fmt.Errorf("version %q: want major.minor.patch", s)
	}
	var n [3]uint32
	for i, p := range parts {
		u, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return version{}, fmt.Errorf("version %q: part %d (%q) is not a number", s, i+1, p)
		}
		n[i] = uint32(u)
	}
	return version{n[0], n[1], n[2]}, nil
}

var minVersion = func() version {
	v, err := parseVersion(MinEnvoyVersion)
	if err != nil {
		panic(err)
	}
	return v
}()

// VersionUnknown is the Envoy version of a node that sent no build
// version (a non-Envoy xDS client: grpcurl, go-control-plane tests).
const VersionUnknown = "unknown"

// envoyVersion reads the node's user_agent_build_version, which Envoy
// fills from its own build unless the bootstrap sets it
// (source/server/server.cc: "if (!bootstrap_.node().user_agent_build_version().has_version())
// ... = VersionInfo::buildVersion()"). It returns the version as text
// (VersionUnknown when the node sent none) and, for an Envoy below
// MinEnvoyVersion, an error naming the version found and the one needed.
func envoyVersion(node *corev3.Node) (string, error) {
	sv := node.GetUserAgentBuildVersion().GetVersion()
	if sv == nil {
		return VersionUnknown, nil
	}
	v := version{sv.GetMajorNumber(), sv.GetMinorNumber(), sv.GetPatch()}
	if v.less(minVersion) {
		name := node.GetUserAgentName()
		if name == "" {
			name = "Envoy"
		} else if name == "envoy" {
			name = "Envoy"
		}
		return v.String(), fmt.Errorf("%s %s is below airlock's floor %s: %s", name, v, MinEnvoyVersion, floorReason)
	}
	return v.String(), nil
}
