package xds

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

func envoyNode(id string, major, minor, patch uint32) *corev3.Node {
	return &corev3.Node{Id: id, Cluster: "airlock", UserAgentName: "envoy",
		UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: major, MinorNumber: minor, Patch: patch}}}}
}

func TestEnvoyVersionFloor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		node    *corev3.Node
		want    string
		refused bool
	}{
		{"no build version", &corev3.Node{Id: "grpcurl"}, VersionUnknown, false},
		{"1.32.3 lacks inline SRDS", envoyNode("a", 1, 32, 3), "1.32.3", true},
		{"1.33.9 lacks protocol_config", envoyNode("a", 1, 33, 9), "1.33.9", true},
		{"0.99.0", envoyNode("a", 0, 99, 0), "0.99.0", true},
		{"floor itself", envoyNode("a", 1, 34, 0), "1.34.0", false},
		{"1.37.1", envoyNode("a", 1, 37, 1), "1.37.1", false},
		{"2.0.0", envoyNode("a", 2, 0, 0), "2.0.0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := envoyVersion(tc.node)
			if got != tc.want {
				t.Errorf("version = %q, want %q", got, tc.want)
			}
			if (err != nil) != tc.refused {
				t.Fatalf("err = %v, refused want %v", err, tc.refused)
			}
			if err != nil && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), MinEnvoyVersion) || !strings.Contains(err.Error(), "protocol_config")) {
				t.Errorf("refusal %q does not name the version found, the floor and why", err)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want version
		bad  bool
	}{
		{in: "1.34.0", want: version{1, 34, 0}},
		{in: "v1.37", want: version{1, 37, 0}},
		{in: " 1.2.3 ", want: version{1, 2, 3}},
		{in: "1", bad: true},
		{in: "1.x.0", bad: true},
		{in: "1.2.3.4", bad: true},
		{in: "1.-2.0", bad: true},
		{in: "", bad: true},
	} {
		got, err := parseVersion(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseVersion(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.34.0", "v1.2", "", "1..2", "99999999999.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseVersion(s)
		if err != nil {
			return
		}
		back, err := parseVersion(v.String())
		if err != nil || back != v {
			t.Fatalf("%q → %v does not round-trip: %v %v", s, v, back, err)
		}
	})
}
