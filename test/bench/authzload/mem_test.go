package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStatus
		wantErr string
	}{
		{"linux", "Name:\tairlock\nVmPeak:\t 1300000 kB\nVmHWM:\t  163604 kB\nVmRSS:\t  150020 kB\nRssAnon:\t  112968 kB\nRssFile:\t   37052 kB\nRssShmem:\t       0 kB\nThreads:\t9\n",
			procStatus{rss: 150020 << 10, hwm: 163604 << 10, anon: 112968 << 10, file: 37052 << 10}, ""},
		{"kernel before 4.5", "VmHWM:\t  163604 kB\nVmRSS:\t  150020 kB\n", procStatus{rss: 150020 << 10, hwm: 163604 << 10}, ""},
		{"bad RssAnon", "VmRSS: 1 kB\nVmHWM: 2 kB\nRssAnon: x kB\n", procStatus{}, "RssAnon"},
		{"order and spacing", "VmRSS: 1 kB\nVmHWM:2 kB", procStatus{rss: 1 << 10, hwm: 2 << 10}, ""},
		{"kernel thread", "Name:\tkthreadd\nThreads:\t1\n", procStatus{}, "no VmRSS"},
		{"only one", "VmRSS:\t5 kB\n", procStatus{}, "no VmRSS"},
		{"unit", "VmRSS:\t5 MB\nVmHWM:\t5 kB\n", procStatus{}, "not \"<n> kB\""},
		{"number", "VmRSS:\tfive kB\nVmHWM:\t5 kB\n", procStatus{}, "VmRSS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStatus(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestReadProcStatusReadsThisProcess(t *testing.T) {
	// The driver reads airlock's memory from /proc: on a machine without
	// it the memory phase cannot work, and that is a failure, not a skip.
	st, err := readProcStatus(os.Getpid())
	if err != nil {
		t.Fatalf("reading this process's /proc status: %v", err)
	}
	if st.rss == 0 || st.hwm < st.rss {
		t.Errorf("this process: %+v", st)
	}
	if mb(1_500_000) != 1.5 {
		t.Errorf("mb(1.5e6) = %v, want 1.5", mb(1_500_000))
	}
}
