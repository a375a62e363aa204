package main

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

func TestProcCPUReadsThisProcess(t *testing.T) {
	// Burn a little CPU so both clocks move.
	sum := sha256.Sum256(nil)
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		sum = sha256.Sum256(sum[:])
	}
	got, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := selfCPU()
	if self <= 0 {
		t.Fatal("getrusage reports no CPU time")
	}
	// /proc counts in 10ms ticks, getrusage in microseconds: same clock,
	// coarser grain.
	if got <= 0 || got > self+20*time.Millisecond {
		t.Errorf("/proc says %s, getrusage %s", got, self)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Error("a process that does not exist was read")
	}
}

func TestPerRequest(t *testing.T) {
	tests := []struct {
		d    time.Duration
		n    int
		want float64
	}{
		{time.Second, 10000, 100},
		{1500 * time.Microsecond, 2, 750},
		{time.Second, 0, 0},
		{-time.Second, 10, 0},
	}
	for _, tc := range tests {
		if got := perRequest(tc.d, tc.n); got != tc.want {
			t.Errorf("perRequest(%s, %d) = %v, want %v", tc.d, tc.n, got, tc.want)
		}
	}
}
