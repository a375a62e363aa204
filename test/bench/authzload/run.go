package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

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
