package serve

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TuneGC sets airlock's default unless GOGC says otherwise.
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
		stop, got := TuneGC(0)
		stop()
		if got != tc.want {
			t.Errorf("GOGC=%q (set %v): TuneGC() = %d, want %d", tc.env, tc.set, got, tc.want)
		}
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("GOGC=%q: percent in force %d, want %d", tc.env, got, tc.want)
		}
	}
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, target uint64
		want         int
	}{
		{live: 8 * mib, target: 48 * mib, want: 400},  // small heap: the cheap collector, goal 40 MiB
		{live: 12 * mib, target: 48 * mib, want: 300}, // goal exactly the target
		{live: 20 * mib, target: 48 * mib, want: 140}, // goal 48 MiB
		{live: 32 * mib, target: 48 * mib, want: 50},  // two thirds of the target: the floor
		{live: 40 * mib, target: 48 * mib, want: 50},  // never below the floor
		{live: 200 * mib, target: 48 * mib, want: 50}, // past the target
		{live: 0, target: 48 * mib, want: 50},
	} {
		if got := gcPercentFor(tc.live, tc.target); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.target/mib, got, tc.want)
		}
	}
}

// The tuner follows the live heap after each collection: with a live
// heap of about 40 MiB and a 48 MiB target it sets the floor; when
// that heap is dropped it goes back to DefaultGCPercent; stopped, it
// leaves the percent alone.
func TestGCTunerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	os.Unsetenv("GOGC")
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	stop, _ := TuneGC(48 << 20)
	defer stop()
	percent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for percent() != want {
			if time.Now().After(deadline) {
				t.Fatalf("GC percent %d, want %d", percent(), want)
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
	}
	live := make([][]byte, 40)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitFor(MinGCPercent)
	runtime.KeepAlive(live)
	live = nil
	waitFor(DefaultGCPercent)
	stop()
	runtime.GC()
	debug.SetGCPercent(123)
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := percent(); p != 123 {
		t.Fatalf("a stopped tuner set the percent to %d", p)
	}
}
