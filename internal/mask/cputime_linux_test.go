package mask

import (
	"syscall"
	"time"
	"unsafe"
)

// threadTime is the CPU time the calling thread has used (the caller locks
// itself to its thread): unlike wall time, it does not count the time the
// thread waited for a CPU on a loaded machine. It is read with
// clock_gettime(CLOCK_THREAD_CPUTIME_ID), exact to the nanosecond;
// getrusage(RUSAGE_THREAD) only moves on at scheduler ticks (milliseconds),
// too coarse for one turn of the benchmark (a few hundred microseconds).
func threadTime() time.Duration {
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return time.Duration(ts.Nano())
}
