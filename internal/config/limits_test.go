package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// The response limit has two names; whichever the file sets is the limit,
// and both set must agree.
func TestResponseLimitAlias(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		want        int
	}{
		{"default", "", DefaultMaxResponseBytes},
		{"new name", "limits: {max_response_bytes: 2097152}\n", 2 << 20},
		{"old name", "masking: {max_body_bytes: 3145728}\n", 3 << 20},
		{"both, equal", "limits: {max_response_bytes: 2097152}\nmasking: {max_body_bytes: 2097152}\n", 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t)
			cfg, err := Parse(strings.NewReader(minimal+tc.extra), filepath.Join(dir, "airlock.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Limits.MaxResponseBytes != tc.want || cfg.Masking.MaxBodyBytes != tc.want || cfg.ResponseLimit() != tc.want {
				t.Errorf("limits.max_response_bytes %d, masking.max_body_bytes %d, ResponseLimit %d; want all %d",
					cfg.Limits.MaxResponseBytes, cfg.Masking.MaxBodyBytes, cfg.ResponseLimit(), tc.want)
			}
		})
	}
}

// Incoherent or out-of-range limits are refused with the field named.
func TestLimitsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		want        []string
	}{
		{"both names disagree", "limits: {max_response_bytes: 2097152}\nmasking: {max_body_bytes: 4194304}\n",
			[]string{"limits.max_response_bytes", "disagrees with masking.max_body_bytes"}},
		{"event over the response limit", "limits: {max_response_bytes: 65536}\nmasking: {max_event_bytes: 131072}\n",
			[]string{"masking.max_event_bytes", "over limits.max_response_bytes"}},
		{"event too small", "masking: {max_event_bytes: 10}\n", []string{"masking.max_event_bytes", "at least 1024"}},
		{"response too large", "limits: {max_response_bytes: 134217728}\n", []string{"limits.max_response_bytes", "outside 1024..67108864"}},
		{"response too small (old name)", "masking: {max_body_bytes: 100}\n", []string{"limits.max_response_bytes", "outside"}},
		{"request too large", "limits: {max_request_bytes: 134217728}\n", []string{"limits.max_request_bytes", "outside"}},
		{"no held calls", "limits: {max_held_calls: 0}\n", []string{"limits.max_held_calls", "outside 1..1048576"}},
		{"held calls negative", "limits: {max_held_calls: -5}\n", []string{"limits.max_held_calls"}},
		{"too few streams", "limits: {max_streams: 4}\n", []string{"limits.max_streams", "outside 16..1048576"}},
		{"too many streams", "limits: {max_streams: 2000000}\n", []string{"limits.max_streams"}},
		{"heap target too small", "limits: {heap_target_bytes: 1048576}\n", []string{"limits.heap_target_bytes", "outside 16777216..", "or 0: no target"}},
		{"heap target negative", "limits: {heap_target_bytes: -1}\n", []string{"limits.heap_target_bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t)
			_, err := Parse(strings.NewReader(minimal+tc.extra), filepath.Join(dir, "airlock.yaml"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The defaults size the breakers as documented.
func TestLimitDefaults(t *testing.T) {
	dir := writePolicyDir(t)
	cfg, err := Parse(strings.NewReader(minimal), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Limits
	if l.MaxHeldCalls != DefaultMaxHeldCalls || l.MaxStreams != DefaultMaxStreams || l.MaxRequestBytes != DefaultMaxRequestBytes {
		t.Errorf("limits %+v", l)
	}
	if got := l.AuthzBreaker(); got != DefaultMaxHeldCalls+AuthzQuickChecks {
		t.Errorf("AuthzBreaker = %d", got)
	}
}
