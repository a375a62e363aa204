package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// listen.advertise is a bare host: a DNS name or an IP, never a port or a URL.
func TestListenAdvertise(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"airlock.airlock-system.svc.cluster.local", true},
		{"airlock", true},
		{"10.0.3.7", true},
		{"fd00::7", true},
		{"airlock:9001", false},
		{"http://airlock", false},
		{"-airlock", false},
		{"air_lock", false},
		{"a..b", false},
		{strings.Repeat("a", 64), false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			dir := writePolicyDir(t)
			cfg, err := Parse(strings.NewReader(minimal+"listen: {advertise: \""+tc.host+"\"}\n"), filepath.Join(dir, "airlock.yaml"))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.ok && cfg.Listen.Advertise != tc.host:
				t.Fatalf("advertise = %q", cfg.Listen.Advertise)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "listen.advertise")):
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}
