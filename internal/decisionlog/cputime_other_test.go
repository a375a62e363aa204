//go:build !linux

package decisionlog

import "time"

var start = time.Now()

// processTime falls back to wall time where process CPU time is not at
// hand.
func processTime() time.Duration { return time.Since(start) }
