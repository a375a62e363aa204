// Package cputime reads the CPU time this process, or the calling
// thread, has used: what benchmarks report beside ns/op, because unlike
// wall time it does not count waiting for a CPU on a loaded machine.
// Process time counts every thread (the collector's too); thread time
// means something only for a goroutine locked to its thread
// (runtime.LockOSThread), since goroutines move between threads.
package cputime
