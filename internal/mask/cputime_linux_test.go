package mask

import (
	"syscall"
	"time"
)

// threadTime is the CPU time the calling thread has used (the caller locks
// itself to its thread): unlike wall time, it does not count the time the
// thread waited for a CPU on a loaded machine.
func threadTime() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
