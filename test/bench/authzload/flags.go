package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// peerEnv names the opa-envoy-plugin binary when --peer-bin is not given.
const peerEnv = "OPA_ENVOY_PLUGIN"

type runFlags struct {
	targets                  string
	airlockBin, airlockAddr  string
	noopAddr                 string
	peerBin, peerAddr        string
	tokenEnv                 string
	policyDir, peerPolicyDir string
	users, requests, rounds  int
	fresh                    bool
	modes                    string
	phases                   string
	full                     bool
	clickhouse               string
	grants, streams          int
	procDuration             time.Duration
	jsonOut, workDir         string
	load                     Load
	startTimeout             time.Duration
}

// The phases of a run (--phases).
const (
	phaseAuthz = "authz" // ext_authz Checks: the closed and open loops (--modes)
	phaseProc  = "proc"  // ext_proc exchanges, JSON and SSE, closed loop
	phaseMem   = "mem"   // airlock's memory with --streams open MCP streams
)

// clickhouseOff runs the full configuration with the embedded audit
// store instead of ClickHouse (--clickhouse off).
const clickhouseOff = "off"

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.targets, "targets", "noop,airlock,peer", "targets to run, in order (noop, airlock, peer)")
	fs.StringVar(&f.airlockBin, "airlock-bin", "bin/airlock", "airlock binary to run as `airlock serve` (built with go build -o)")
	fs.StringVar(&f.airlockAddr, "airlock-addr", "", "address of an airlock already running (instead of --airlock-bin); needs --token-env")
	fs.StringVar(&f.noopAddr, "noop-addr", "", "address of `authzload noop` already running (no-op Check and ext_proc; default: run it)")
	fs.StringVar(&f.peerBin, "peer-bin", os.Getenv(peerEnv), "opa-envoy-plugin binary, built outside this repository (default $"+peerEnv+")")
	fs.StringVar(&f.peerAddr, "peer-addr", "", "address of an opa-envoy-plugin already running with test/bench/peer's policy; needs --token-env")
	fs.StringVar(&f.tokenEnv, "token-env", "", "environment variable holding a bearer token for the *-addr targets (route "+benchPath+", target "+benchTarget+")")
	fs.StringVar(&f.policyDir, "policy-dir", "policies", "airlock's policy directory (decision.rego and data.yaml)")
	fs.StringVar(&f.peerPolicyDir, "peer-policy-dir", "test/bench/peer", "the peer's Rego policy directory")
	fs.IntVar(&f.users, "users", 100, "distinct users (signed tokens) in the request pool")
	fs.IntVar(&f.requests, "requests", 1000, "distinct CheckRequests in the pool")
	fs.BoolVar(&f.fresh, "fresh", true, "make every call new (JSON-RPC id, request id, a cursor argument); false replays the pool, so calls repeat")
	fs.IntVar(&f.rounds, "rounds", 1, "run the target sequence this many times and report medians (a shared machine is noisy)")
	fs.StringVar(&f.modes, "modes", "closed,open", "ext_authz loops to run: closed (peak requests/s), open (latency at --rate)")
	fs.StringVar(&f.phases, "phases", "authz,proc,mem", "phases to run on each target: authz (Checks, --modes), proc (ext_proc JSON and SSE exchanges; no-op and airlock), mem (airlock's RSS with --streams open MCP streams)")
	fs.BoolVar(&f.full, "full", true, "run airlock with issue 19's default configuration: audit into ClickHouse, decision log (file), a masking profile, --grants live grants, the ext_proc listener; false: ext_authz and the embedded audit store only")
	fs.StringVar(&f.clickhouse, "clickhouse", "", "native address of a ClickHouse for airlock's audit rows (default: start one locally; \"off\": the embedded store)")
	fs.IntVar(&f.grants, "grants", defaultGrants, "live grants in airlock's grant store (with --full)")
	fs.IntVar(&f.streams, "streams", 1000, "mem phase: MCP streams held open at once")
	fs.DurationVar(&f.procDuration, "proc-duration", 5*time.Second, "proc phase: measured time of each exchange kind (after --warmup)")
	fs.IntVar(&f.load.Conns, "conns", 4, "gRPC connections to each target")
	fs.IntVar(&f.load.Concurrency, "concurrency", 64, "closed loop: requests in flight")
	fs.Float64Var(&f.load.Rate, "rate", 2000, "open loop: requests per second")
	fs.IntVar(&f.load.OpenWorkers, "open-workers", 256, "open loop: most requests in flight")
	fs.DurationVar(&f.load.Warmup, "warmup", 2*time.Second, "warm-up before each measured phase")
	fs.DurationVar(&f.load.Duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&f.load.CallTimeout, "call-timeout", 5*time.Second, "how long calls may run past a phase's end")
	fs.DurationVar(&f.startTimeout, "start-timeout", 30*time.Second, "how long a target may take to answer its first request")
	fs.StringVar(&f.jsonOut, "json", "", "also append the JSON lines to this file")
	fs.StringVar(&f.workDir, "workdir", "", "directory for configs and target logs (default: a temporary one, removed on success)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if err := f.load.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, t := range f.targetList() {
		if !slices.Contains([]string{"noop", "airlock", "peer"}, t) {
			errs = append(errs, fmt.Errorf("targets: unknown target %q (noop, airlock, peer)", t))
		}
	}
	for _, m := range f.modeList() {
		if m != "closed" && m != "open" {
			errs = append(errs, fmt.Errorf("modes: unknown mode %q (closed, open)", m))
		}
	}
	for _, p := range f.phaseList() {
		if !slices.Contains([]string{phaseAuthz, phaseProc, phaseMem}, p) {
			errs = append(errs, fmt.Errorf("phases: unknown phase %q (authz, proc, mem)", p))
		}
	}
	if len(f.phaseList()) == 0 {
		errs = append(errs, errors.New("phases: none given (authz, proc, mem)"))
	}
	if (f.hasPhase(phaseProc) || f.hasPhase(phaseMem)) && !f.full && f.airlockAddr == "" && slices.Contains(f.targetList(), "airlock") {
		errs = append(errs, errors.New("the proc and mem phases need airlock's ext_proc listener: keep --full (or run --phases authz)"))
	}
	if f.grants < 0 || f.streams < 1 || f.procDuration <= 0 {
		errs = append(errs, fmt.Errorf("grants (%d) must not be negative, streams (%d) must be at least 1, proc-duration (%s) positive", f.grants, f.streams, f.procDuration))
	}
	if (f.airlockAddr != "" || f.peerAddr != "") && f.tokenEnv == "" {
		errs = append(errs, errors.New("--airlock-addr and --peer-addr need --token-env (the driver cannot mint tokens a running server trusts)"))
	}
	if f.rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds must be at least 1, got %d", f.rounds))
	}
	if f.users < 1 || f.requests < f.users {
		errs = append(errs, fmt.Errorf("users (%d) must be at least 1 and requests (%d) at least users", f.users, f.requests))
	}
	return f, errors.Join(errs...)
}

func (f *runFlags) targetList() []string { return splitList(f.targets) }
func (f *runFlags) modeList() []string   { return splitList(f.modes) }
func (f *runFlags) phaseList() []string  { return splitList(f.phases) }

func (f *runFlags) hasPhase(p string) bool { return slices.Contains(f.phaseList(), p) }

// useClickHouse: the driver's airlock records into ClickHouse.
func (f *runFlags) useClickHouse() bool {
	return f.full && f.clickhouse != clickhouseOff && f.airlockAddr == "" && slices.Contains(f.targetList(), "airlock")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
