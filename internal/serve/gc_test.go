package serve

import (
	"os"
	"runtime/debug"
	"testing"
)

// tuneGC sets airlock's default unless GOGC says otherwise.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		env  string
		set  bool
		want int
	}{
		{set: false, want: DefaultGCPercent},
		{env: "150", set: true, want: 150},
		{env: "off", set: true, want: -1},
	} {
		t.Setenv("GOGC", tc.env) // restored when the test ends
		if !tc.set {
			os.Unsetenv("GOGC")
		} else {
			// the runtime reads GOGC at start; a test sets what it would have read
			if tc.env == "off" {
				debug.SetGCPercent(-1)
			} else {
				debug.SetGCPercent(150)
			}
		}
		if got := tuneGC(); got != tc.want {
			t.Errorf("GOGC=%q (set %v): tuneGC() = %d, want %d", tc.env, tc.set, got, tc.want)
		}
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("GOGC=%q: percent in force %d, want %d", tc.env, got, tc.want)
		}
	}
}
