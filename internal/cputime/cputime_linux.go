package cputime

import (
	"syscall"
	"time"
	"unsafe"
)

// clock_gettime's clocks (linux/time.h).
const (
	clockProcessCPUTime = 2 // CLOCK_PROCESS_CPUTIME_ID
	clockThreadCPUTime  = 3 // CLOCK_THREAD_CPUTIME_ID
)

// Process is the CPU time the process has used, every thread, to the
// nanosecond (clock_gettime; getrusage moves on at scheduler ticks).
func Process() time.Duration { return clock(clockProcessCPUTime) }

// Thread is the CPU time the calling thread has used, to the nanosecond.
func Thread() time.Duration { return clock(clockThreadCPUTime) }

func clock(id uintptr) time.Duration {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return time.Duration(ts.Nano())
}
