package decisionlog

import (
	"syscall"
	"time"
	"unsafe"
)

// processTime is the CPU time the whole process has used (every thread:
// the collector's too), read with clock_gettime(CLOCK_PROCESS_CPUTIME_ID).
// Unlike wall time it does not count waiting for a CPU on a loaded
// machine.
func processTime() time.Duration {
	const clockProcessCPUTime = 2 // CLOCK_PROCESS_CPUTIME_ID
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return time.Duration(ts.Nano())
}
