package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU time is the benchmark's noise-resistant figure: on a shared machine
// requests/s move with whatever else runs, while the CPU a process spends
// per request barely does. The driver samples its own and the target's
// CPU at the edges of the measured window.

// cpuSample is the CPU time (user + system) used so far by the target
// process and by the driver itself.
type cpuSample struct {
	server, driver time.Duration
	ok             bool // server is known (the target is our child)
	// store is the audit ClickHouse's CPU (storeOK: it was measured): the
	// rows airlock ships cost CPU on the same machine.
	store   time.Duration
	storeOK bool
}

// meter takes a cpuSample; nil means "driver only".
type meter func() cpuSample

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU reads utime + stime of a process from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')' after the command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name, want at least 13", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q are not numbers", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// selfCPU is the driver's own CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processMeter samples pid (0: no server figure), the driver and, when
// storePid is not 0, the audit ClickHouse.
func processMeter(pid, storePid int) meter {
	return func() cpuSample {
		s := cpuSample{driver: selfCPU()}
		if pid > 0 {
			if d, err := procCPU(pid); err == nil {
				s.server, s.ok = d, true
			}
		}
		if storePid > 0 {
			if d, err := procCPU(storePid); err == nil {
				s.store, s.storeOK = d, true
			}
		}
		return s
	}
}

// measureCPU samples m at win.start and win.end in the background; the
// returned function waits for both and gives the difference.
func measureCPU(m meter, win window) func() cpuSample {
	if m == nil {
		m = processMeter(0, 0)
	}
	done := make(chan cpuSample, 1)
	go func() {
		time.Sleep(time.Until(win.start))
		a := m()
		time.Sleep(time.Until(win.end))
		b := m()
		done <- cpuSample{server: b.server - a.server, driver: b.driver - a.driver, ok: a.ok && b.ok,
			store: b.store - a.store, storeOK: a.storeOK && b.storeOK}
	}()
	return func() cpuSample { return <-done }
}

// perRequest is CPU microseconds per request, 0 when unknown.
func perRequest(d time.Duration, n int) float64 {
	if n == 0 || d <= 0 {
		return 0
	}
	return round1(float64(d.Microseconds()) / float64(n))
}
