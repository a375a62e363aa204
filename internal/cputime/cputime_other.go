//go:build !linux

package cputime

import "time"

var start = time.Now()

// Process falls back to wall time where CPU time is not at hand.
func Process() time.Duration { return time.Since(start) }

// Thread falls back to wall time where CPU time is not at hand.
func Thread() time.Duration { return time.Since(start) }
