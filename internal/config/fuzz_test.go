package config

import (
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that whatever it
// accepts passes Validate again (parsing is not lenient where validation is strict).
func FuzzParse(f *testing.F) {
	f.Add(minimal)
	f.Add("targets: [\n")
	f.Add("issuers: {a: 1}\n")
	f.Add("policy:\n  reload_interval: 3x\n")
	f.Add(minimal + "limits: {max_request_bytes: -1}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse(strings.NewReader(src), "/nonexistent/airlock.yaml")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
	})
}
