//go:build unix

package clickhouse

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the whole test binary has used (user and
// system, every thread: server, client, the audit pipeline's goroutines,
// the garbage collector), from getrusage(RUSAGE_SELF). Unlike wall time
// it does not count the time spent waiting for a CPU on a loaded machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
