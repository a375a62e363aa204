// Command auditload measures audit ingestion: it records events through
// airlock's audit pipeline (Record → spool → shipper → ClickHouse over
// the native protocol) into a ClickHouse it starts locally (Debian's
// clickhouse-server, via test/clickhouse) or one given with -clickhouse,
// and reports sustained events/s from the first Record to the last row
// acknowledged by ClickHouse. It then checks zero loss: the table must
// hold exactly the recorded event ids, each once (count FINAL and
// uniqExact(event_id) both equal to the number recorded).
//
//	auditload -n 1000000                 # as fast as producers can record
//	auditload -rate 50000 -duration 30s  # paced: is 50,000/s sustainable?
//
// The result is printed as text and one JSON line prefixed "BENCH_JSON ".
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("auditload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.N, "n", 1_000_000, "events to record (unpaced mode)")
	fs.IntVar(&o.Rate, "rate", 0, "events/s to offer; 0 records as fast as possible")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to offer -rate")
	fs.IntVar(&o.Producers, "producers", 2, "goroutines calling Record")
	fs.IntVar(&o.Sessions, "sessions", 1000, "distinct sessions the events belong to")
	fs.IntVar(&o.PayloadBytes, "payload", 300, "bytes of masked payload per event")
	fs.IntVar(&o.BatchSize, "batch", 10000, "clickhouse.batch_size")
	fs.StringVar(&o.ClickHouse, "clickhouse", "", "native address of a ClickHouse to use (default: start one locally)")
	fs.StringVar(&o.SpoolDir, "spool", "", "spool directory (default: a temporary one)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "auditload:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "auditload:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := load(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "auditload:", err)
		return 1
	}
	res.write(stdout)
	if !res.ZeroLoss() {
		fmt.Fprintln(stderr, "auditload: events were lost or duplicated")
		return 1
	}
	return 0
}

// write prints the result as text and as a BENCH_JSON line.
func (r result) write(w io.Writer) {
	fmt.Fprintf(w, "ClickHouse %s, %d producers, %d-byte payloads, batch %d\n", r.ServerVersion, r.Producers, r.PayloadBytes, r.BatchSize)
	if r.OfferedRate > 0 {
		fmt.Fprintf(w, "offered %d events/s for %s\n", r.OfferedRate, r.Offered)
	}
	fmt.Fprintf(w, "recorded %d events in %s (%.0f events/s into the spool)\n", r.Recorded, r.RecordTime.Round(time.Millisecond), r.RecordRate)
	fmt.Fprintf(w, "all acknowledged by ClickHouse after %s: %.0f events/s sustained end to end\n", r.Total.Round(time.Millisecond), r.SustainedRate)
	fmt.Fprintf(w, "lag after the last Record: %s; peak spool %d bytes\n", r.Lag.Round(time.Millisecond), r.PeakSpoolBytes)
	fmt.Fprintf(w, "CPU per event: %.1fµs here + %.1fµs ClickHouse → about %.0f events/s on 2 idle cores\n", r.CPUPerEventUS, r.CHCPUPerEvent, r.IdlePeak)
	fmt.Fprintf(w, "stored %d rows (FINAL), %d distinct event ids; dropped %d, ship errors %d → zero loss: %v\n",
		r.StoredFinal, r.DistinctIDs, r.Dropped, r.ShipErrors, r.ZeroLoss())
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "BENCH_JSON %s\n", b)
}
