package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentiles(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[len(hundred)-1-i] = int64(i+1) * int64(time.Millisecond) // unsorted on purpose
	}
	tests := []struct {
		name string
		in   []int64
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one", []int64{1500 * int64(time.Microsecond)}, Percentiles{P50: 1.5, P90: 1.5, P99: 1.5, P999: 1.5, Max: 1.5}},
		{"1..100 ms", hundred, Percentiles{P50: 50, P90: 90, P99: 99, P999: 100, Max: 100}},
		{"sub-microsecond rounds to µs", []int64{1234567}, Percentiles{P50: 1.235, P90: 1.235, P99: 1.235, P999: 1.235, Max: 1.235}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, percentiles(tc.in)); diff != "" {
				t.Errorf("percentiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorLogKeepsFewDistinctSamples(t *testing.T) {
	var l errorLog
	for i := range 20 {
		l.add(fmt.Errorf("error %d", i%7))
		l.add(errors.New("error 0"))
	}
	n, samples := l.result()
	if n != 40 {
		t.Errorf("count %d, want 40", n)
	}
	want := []string{"error 0", "error 1", "error 2", "error 3", "error 4"}
	if diff := cmp.Diff(want, samples); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := window{t0, t0.Add(time.Second)}
	tests := []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-time.Nanosecond), false},
		{t0, true},
		{t0.Add(999 * time.Millisecond), true},
		{t0.Add(time.Second), false},
	}
	for _, tc := range tests {
		if got := w.contains(tc.at); got != tc.want {
			t.Errorf("contains(%s) = %v, want %v", tc.at.Sub(t0), got, tc.want)
		}
	}
}
