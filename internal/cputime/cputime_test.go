package cputime

import (
	"runtime"
	"testing"
)

// TestClocksCountWork: both clocks move on while the caller works and
// never go back.
func TestClocksCountWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p0, t0 := Process(), Thread()
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	p1, t1 := Process(), Thread()
	if x == 0 || p1 <= p0 || t1 <= t0 {
		t.Errorf("Process %v → %v, Thread %v → %v after a busy loop; want both to move on", p0, p1, t0, t1)
	}
	if t1-t0 > p1-p0 {
		t.Errorf("the thread used %v, more than the whole process (%v)", t1-t0, p1-p0)
	}
}
