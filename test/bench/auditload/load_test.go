package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestLoadSmall runs the benchmark end to end on a small load, unpaced
// and paced, and checks it reports zero loss.
func TestLoadSmall(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "20000", "-batch", "3000"},
		{"-rate", "5000", "-duration", "1s", "-producers", "1"},
	} {
		var out, errb bytes.Buffer
		start := time.Now()
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), "zero loss: true") || !strings.Contains(out.String(), "BENCH_JSON {") {
			t.Fatalf("%v: output:\n%s", args, out.String())
		}
		t.Logf("%v (%s):\n%s", args, time.Since(start).Round(time.Millisecond), out.String())
	}
}

func TestBadFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-nope"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d", code)
	}
}
