// Command authzload is the ext_authz load benchmark. It drives Envoy-shaped
// envoy.service.auth.v3 CheckRequests (signed Okta-style tokens, an MCP
// tools/call body) over loopback gRPC at a target and reports requests/s
// and latency percentiles, in a closed loop (fixed concurrency: peak
// throughput) and an open loop (fixed arrival rate, latency measured from
// each request's scheduled send time, so a stalled server cannot hide its
// queueing: no coordinated omission).
//
// Targets run as separate processes, as airlock runs beside Envoy: airlock
// itself (`airlock serve`), a no-op Check server (this command's `noop`
// subcommand: the gRPC limit of the machine), and optionally the
// opa-envoy-plugin peer with an equivalent Rego policy
// (test/bench/peer). Every answer is checked: a wrong answer is an error,
// so a target that denies everything cannot look fast.
//
//	authzload noop --listen 127.0.0.1:9191
//	authzload run --airlock-bin bin/airlock [--peer-bin $OPA_ENVOY_PLUGIN]
//
// The results are written as a markdown table and one JSON line per target
// (prefixed "BENCH_JSON ") plus a summary line with the ratios.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `authzload — ext_authz Check load benchmark

Usage:
  authzload noop --listen ADDR    serve a no-op Check (always OK) and ext_proc on ADDR
  authzload run [flags]           benchmark airlock, the no-op server and the peer
                                  (authzload run -h lists the flags)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "noop":
		err = cmdNoop(args[1:], stdout)
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "authzload: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "authzload %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
