package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
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

func cmdRun(args []string, stdout, stderr io.Writer) error {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, keep := f.workDir, f.workDir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "authzload-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b := &bench{f: f, dir: dir, stderr: stderr}
	defer b.close()
	results, err := b.runAll(ctx)
	if err != nil {
		keep = true
		fmt.Fprintf(stderr, "authzload: configs and target logs kept in %s\n", dir)
	}
	if len(results) > 0 {
		if werr := writeReport(stdout, f, results, b.skipped); werr != nil {
			return errors.Join(err, werr)
		}
		if f.jsonOut != "" {
			if werr := appendJSON(f.jsonOut, results, b.skipped); werr != nil {
				return errors.Join(err, werr)
			}
		}
	}
	if !keep {
		os.RemoveAll(dir)
	}
	return err
}

// bench holds what one run shares across targets.
type bench struct {
	f       *runFlags
	dir     string
	stderr  io.Writer
	iss     *oidcissuer.Issuer
	minted  *Workload // tokens from the in-process issuer
	given   *Workload // the --token-env token
	secret  string    // upstream credential the launched targets inject
	skipped []string
	store   *auditStore // the audit ClickHouse (useClickHouse)
	grants  string      // the filled grant store directory ("" until written)
	// afterLoad is airlock's memory at the end of this round's load
	// phases (nil: they did not run).
	afterLoad *procStatus
}

func (b *bench) close() {
	if b.iss != nil {
		b.iss.Close()
	}
	if b.store != nil {
		b.store.close()
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "authzload: "+format+"\n", args...)
}

// runAll benchmarks each target in turn, round after round; only one
// target process runs at a time.
func (b *bench) runAll(ctx context.Context) ([]*TargetResult, error) {
	var results []*TargetResult
	for _, name := range b.f.targetList() {
		if name == "peer" && b.f.peerBin == "" && b.f.peerAddr == "" {
			msg := "peer (opa-envoy-plugin) skipped: set " + peerEnv + " (or --peer-bin) to an opa-envoy-plugin binary built from its public source outside this repository"
			b.logf("%s", msg)
			b.skipped = append(b.skipped, msg)
			continue
		}
		results = append(results, &TargetResult{Bench: "ext_authz_check", Target: name, Env: captureEnv(b.f)})
	}
	if b.f.airlockAddr != "" && slices.Contains(b.f.targetList(), "airlock") && (b.f.hasPhase(phaseProc) || b.f.hasPhase(phaseMem)) {
		msg := "airlock's proc and mem phases skipped: --airlock-addr names its ext_authz listener only, and the driver reads memory only of a process it started"
		b.logf("%s", msg)
		b.skipped = append(b.skipped, msg)
	}
	if b.f.useClickHouse() {
		b.logf("starting ClickHouse for airlock's audit rows")
		st, err := startAuditStore(ctx, b.f.clickhouse)
		if err != nil {
			return nil, err
		}
		b.store = st
	}
	for round := 1; round <= b.f.rounds; round++ {
		for _, r := range results {
			if err := b.runTarget(ctx, r, round); err != nil {
				return results, err
			}
		}
		for _, r := range results {
			if r.Target == "airlock" && b.f.hasPhase(phaseMem) {
				if err := b.runMemRound(ctx, r, round); err != nil {
					return results, err
				}
			}
		}
	}
	if b.store != nil {
		for _, r := range results {
			if r.Target == "airlock" && r.Launched {
				// The measurement is real only if the rows reached ClickHouse.
				wantEvents := b.f.hasPhase(phaseProc) || b.f.hasPhase(phaseMem)
				rows := b.store.count(ctx, 15*time.Second, wantEvents)
				r.Audit = &rows
				b.logf("audit rows in ClickHouse (database %s): %d decisions, %d events %s", b.store.db, rows.Decisions, rows.Events, rows.Err)
			}
		}
	}
	return results, nil
}

// start starts (or finds) the target, waits for its first right answer
// and connects to it; stop ends both.
func (b *bench) start(ctx context.Context, name string) (t *running, conns []*grpc.ClientConn, pid int, stop func(), err error) {
	t, err = b.setup(ctx, name)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	stop = func() {
		closeConns(conns)
		if t.proc != nil {
			t.proc.stop(10 * time.Second)
		}
	}
	var exited <-chan struct{}
	if t.proc != nil {
		exited, pid = t.proc.exited, t.proc.cmd.Process.Pid
	}
	b.logf("%s: waiting for %s to answer", name, t.addr)
	if err := waitReady(ctx, t.addr, t.work, t.exp, b.f.startTimeout, exited); err != nil {
		stop()
		return nil, nil, 0, nil, t.fail(err)
	}
	if conns, err = dial(ctx, t.addr, b.f.load.Conns); err != nil {
		stop()
		return nil, nil, 0, nil, t.fail(err)
	}
	return t, conns, pid, stop, nil
}

// runTarget starts the target, runs the load phases of one round (authz,
// proc) and stops it.
func (b *bench) runTarget(ctx context.Context, r *TargetResult, round int) error {
	if !b.f.hasPhase(phaseAuthz) && !(b.f.hasPhase(phaseProc) && r.Target != "peer") {
		return nil
	}
	name := r.Target
	t, conns, pid, stop, err := b.start(ctx, name)
	if err != nil {
		return err
	}
	defer stop()
	r.Addr, r.Launched = t.addr, t.proc != nil
	for _, mode := range b.f.modeList() {
		if !b.f.hasPhase(phaseAuthz) {
			break
		}
		b.logf("%s: round %d/%d, %s loop, %s warm-up + %s", name, round, b.f.rounds, mode, b.f.load.Warmup, b.f.load.Duration)
		var p Phase
		if mode == "closed" {
			p = ClosedLoop(ctx, conns, t.work, t.exp, b.f.load, processMeter(pid, b.storePid()))
		} else {
			p = OpenLoop(ctx, conns, t.work, t.exp, b.f.load, processMeter(pid, b.storePid()))
		}
		p.Round, p.LoadAvg, p.CPUPressure = round, loadAvg(), cpuPressure()
		r.Phases = append(r.Phases, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := t.alive(); err != nil {
			return err
		}
	}
	if b.f.hasPhase(phaseProc) && t.procAddr != "" {
		if err := b.runProc(ctx, t, r, round, pid); err != nil {
			return err
		}
	}
	if name == "airlock" && pid > 0 {
		// What the load left resident, for reference beside the memory
		// phase (which starts a fresh process).
		if st, err := readProcStatus(pid); err == nil {
			b.afterLoad = &st
		}
	}
	return nil
}

// runMemRound runs the memory phase in a fresh airlock process: the
// figure is what the live grants and the open streams hold, not what an
// earlier load phase left in the heap (that is reported beside it).
func (b *bench) runMemRound(ctx context.Context, r *TargetResult, round int) error {
	if b.f.airlockAddr != "" {
		return nil
	}
	t, conns, pid, stop, err := b.start(ctx, "airlock")
	if err != nil {
		return err
	}
	defer stop()
	r.Addr, r.Launched = t.addr, true
	return b.runMemPhase(ctx, t, r, round, conns, pid)
}

// runProc drives the JSON and the SSE exchange at the target's ext_proc
// listener, one closed loop each.
func (b *bench) runProc(ctx context.Context, t *running, r *TargetResult, round, pid int) error {
	conns, err := dial(ctx, t.procAddr, b.f.load.Conns)
	if err != nil {
		return t.fail(fmt.Errorf("ext_proc: %w", err))
	}
	defer closeConns(conns)
	profile := "default"
	if b.f.full {
		profile = benchMaskingProfile
	}
	exp := expectProcAny
	if t.name == "airlock" {
		exp = expectProcMasked
	}
	l := b.f.load
	l.Duration = b.f.procDuration
	for i, kind := range procKinds {
		md, err := authzMetadata(procDecision(profile, sessionID("ext_proc", i), i))
		if err != nil {
			return err
		}
		x, err := newExchange(kind, md, "Bearer "+b.secret, sessionID("ext_proc", i))
		if err != nil {
			return err
		}
		b.logf("%s: round %d/%d, ext_proc %s exchange, closed loop, %s warm-up + %s", t.name, round, b.f.rounds, kind, l.Warmup, l.Duration)
		p := ProcClosedLoop(ctx, conns, x, exp, l, processMeter(pid, b.storePid()))
		p.Round, p.LoadAvg, p.CPUPressure = round, loadAvg(), cpuPressure()
		r.Phases = append(r.Phases, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := t.alive(); err != nil {
			return err
		}
	}
	return nil
}

// runMemPhase holds --streams MCP streams open in airlock and reads its
// memory.
func (b *bench) runMemPhase(ctx context.Context, t *running, r *TargetResult, round int, authz []*grpc.ClientConn, pid int) error {
	conns, err := dial(ctx, t.procAddr, b.f.load.Conns)
	if err != nil {
		return t.fail(fmt.Errorf("ext_proc: %w", err))
	}
	defer closeConns(conns)
	b.logf("%s: round %d/%d, memory with %d open MCP streams (%d live grants)", t.name, round, b.f.rounds, b.f.streams, b.liveGrants())
	m, err := runMem(ctx, memLoad{authz: authz, proc: conns, work: t.work, exp: t.exp, streams: b.f.streams,
		parallel: 32, timeout: 2 * time.Minute, pid: pid})
	if err != nil {
		return t.fail(fmt.Errorf("memory phase: %w", err))
	}
	m.Round, m.Grants = round, b.liveGrants()
	if b.afterLoad != nil {
		m.LoadRSS, m.LoadHWM = mb(b.afterLoad.rss), mb(b.afterLoad.hwm)
		b.afterLoad = nil
	}
	r.Mem = append(r.Mem, m)
	return t.alive()
}

// storePid is the audit ClickHouse's process (0: none, or not ours).
func (b *bench) storePid() int {
	if b.store == nil || b.store.srv == nil {
		return 0
	}
	return b.store.srv.Pid()
}

// liveGrants is how many live grants airlock's store holds.
func (b *bench) liveGrants() int {
	if b.grants == "" {
		return 0
	}
	return b.f.grants
}

// running is one target ready to be driven.
type running struct {
	name     string
	addr     string
	procAddr string // its ext_proc listener ("" none)
	proc     *proc
	work     *Workload
	exp      Expect
}

// alive reports a target process that exited during the benchmark.
func (t *running) alive() error {
	if t.proc == nil {
		return nil
	}
	select {
	case <-t.proc.exited:
		return t.fail(errors.New("exited during the benchmark"))
	default:
		return nil
	}
}

func (t *running) fail(err error) error {
	if t.proc != nil {
		return t.proc.fail(err)
	}
	return fmt.Errorf("%s at %s: %w", t.name, t.addr, err)
}

// setup starts (or finds) the target and picks its workload and the
// answer it must give.
func (b *bench) setup(ctx context.Context, name string) (*running, error) {
	switch name {
	case "noop":
		w, err := b.anyWorkload(ctx)
		if err != nil {
			return nil, err
		}
		if b.f.noopAddr != "" {
			// `authzload noop` serves its no-op processor on the same port.
			return &running{name: name, addr: b.f.noopAddr, procAddr: b.f.noopAddr, work: w, exp: ExpectOK{}}, nil
		}
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("noop: find this binary: %w", err)
		}
		p, addr, err := startNoop(ctx, self, filepath.Join(b.dir, "noop.log"))
		if err != nil {
			return nil, err
		}
		return &running{name: name, addr: addr, procAddr: addr, proc: p, work: w, exp: ExpectOK{}}, nil
	case "airlock":
		if b.f.airlockAddr != "" {
			w, err := b.givenWorkload()
			if err != nil {
				return nil, err
			}
			return &running{name: name, addr: b.f.airlockAddr, work: w, exp: ExpectAirlockAllow{}}, nil
		}
		return b.startAirlock(ctx)
	default: // peer
		if b.f.peerAddr != "" {
			w, err := b.givenWorkload()
			if err != nil {
				return nil, err
			}
			return &running{name: name, addr: b.f.peerAddr, work: w, exp: ExpectAirlockAllow{}}, nil
		}
		return b.startPeer(ctx)
	}
}

func (b *bench) startAirlock(ctx context.Context) (*running, error) {
	w, err := b.mintedWorkload(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	sc := serveConfig{Dir: b.dir, Authz: addr, IssuerURL: b.iss.URL(), PolicyDir: b.f.policyDir, Full: b.f.full}
	if b.f.full {
		if sc.Proc, err = freePort(); err != nil {
			return nil, err
		}
		sc.GrantsDir = filepath.Join(b.dir, "grants")
		if b.grants == "" && b.f.grants > 0 {
			b.logf("writing %d live grants into the grant store", b.f.grants)
			if err := writeGrants(sc.GrantsDir, b.f.grants, b.iss.URL()); err != nil {
				return nil, err
			}
			b.grants = sc.GrantsDir
		}
		if b.store != nil {
			sc.ClickHouse, sc.Database = b.store.addr, b.store.db
		}
	}
	cfg, err := sc.write()
	if err != nil {
		return nil, err
	}
	p, err := startProc("airlock", filepath.Join(b.dir, "airlock.log"), []string{credentialEnv + "=" + b.secret}, nil,
		b.f.airlockBin, "serve", "--config", cfg)
	if err != nil {
		return nil, err
	}
	return &running{name: "airlock", addr: addr, procAddr: sc.Proc, proc: p, work: w, exp: ExpectAirlockAllow{Credential: "Bearer " + b.secret}}, nil
}

func (b *bench) startPeer(ctx context.Context) (*running, error) {
	w, err := b.mintedWorkload(ctx)
	if err != nil {
		return nil, err
	}
	jwks, err := fetchJWKS(ctx, b.iss.JWKSURL())
	if err != nil {
		return nil, err
	}
	grpcAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	args, err := peerFiles(b.dir, grpcAddr, httpAddr, b.f.peerPolicyDir, b.f.policyDir, benchPeerData(b.iss.URL(), jwks, "Bearer "+b.secret))
	if err != nil {
		return nil, err
	}
	p, err := startProc("peer", filepath.Join(b.dir, "peer.log"), nil, nil, append([]string{b.f.peerBin}, args...)...)
	if err != nil {
		return nil, err
	}
	return &running{name: "peer", addr: grpcAddr, proc: p, work: w, exp: ExpectAirlockAllow{Credential: "Bearer " + b.secret}}, nil
}

// anyWorkload is the minted pool, or the given token's pool when only
// running servers are driven.
func (b *bench) anyWorkload(ctx context.Context) (*Workload, error) {
	if b.f.tokenEnv != "" && (b.f.airlockAddr != "" || !slices.Contains(b.f.targetList(), "airlock")) {
		return b.givenWorkload()
	}
	return b.mintedWorkload(ctx)
}

// mintedWorkload starts the in-process issuer once and mints the pool.
func (b *bench) mintedWorkload(context.Context) (*Workload, error) {
	if b.minted != nil {
		return b.minted, nil
	}
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default", TokenTTL: 2 * time.Hour})
	if err != nil {
		return nil, err
	}
	b.iss = iss
	var s [24]byte
	_, _ = rand.Read(s[:])
	b.secret = "ghp_bench" + hex.EncodeToString(s[:])
	b.logf("minting %d tokens (RS256) and %d requests", b.f.users, b.f.requests)
	users, err := MintUsers(iss, b.f.users, benchResource, benchScope)
	if err != nil {
		return nil, err
	}
	b.minted, err = NewWorkload(users, Shape{Host: benchHost, Path: benchPath, Target: benchTarget, Requests: b.f.requests, Fresh: b.f.fresh})
	return b.minted, err
}

func (b *bench) givenWorkload() (*Workload, error) {
	if b.given != nil {
		return b.given, nil
	}
	tok := strings.TrimSpace(os.Getenv(b.f.tokenEnv))
	if tok == "" {
		return nil, fmt.Errorf("token-env: $%s is empty", b.f.tokenEnv)
	}
	sub, err := TokenSubject(tok)
	if err != nil {
		return nil, fmt.Errorf("token-env: $%s: %w", b.f.tokenEnv, err)
	}
	w, err := NewWorkload([]UserToken{{Token: tok, Subject: sub}}, Shape{Host: benchHost, Path: benchPath, Target: benchTarget, Requests: b.f.requests, Fresh: b.f.fresh})
	b.given = w
	return w, err
}
