package peers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// outputLimit bounds the captured stdout+stderr of a peer process.
	outputLimit = 32 << 10
	// defaultStartTimeout bounds how long a Start function waits for readiness.
	defaultStartTimeout = 30 * time.Second
	// stopGrace is how long Close waits after SIGTERM before SIGKILL.
	stopGrace = 2 * time.Second
)

// process is a child process in its own process group, with its output
// captured into a bounded buffer.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed

	closeOnce sync.Once
}

// baseEnv is the part of this process's environment a peer inherits: only
// what Node needs to run. Secrets in the test's environment stay out of
// peers (server-everything has a tool that prints its environment).
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startProcess starts argv in dir with [baseEnv] plus env.
func startProcess(name, dir string, argv, env []string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	cmd.SysProcAttr = sysProcAttr()
	out := newTailBuffer(outputLimit)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, argv[0], err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output is the captured stdout and stderr (the last 32 KiB).
func (p *process) Output() string { return p.out.String() }

// errorf wraps a formatted error with the process's captured output.
func (p *process) errorf(format string, args ...any) error {
	return &outputError{err: fmt.Errorf(format, args...), name: p.name, output: p.out.String()}
}

// Close stops the whole process group: SIGTERM, then SIGKILL after a grace
// period. It is idempotent and returns nil once the process is gone.
func (p *process) Close() error {
	p.closeOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
		// Also reaps any grandchildren left in the group after the leader exits.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	})
	return nil
}

// waitReady polls probe until it succeeds, the process exits, ctx ends or
// timeout passes. On failure it closes the process.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, probe func(context.Context) error) error {
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			err := p.errorf("%s exited before it was ready: %v", p.name, p.err)
			p.Close()
			return err
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx)
		pcancel()
		if last == nil && !p.exited() {
			return nil
		}
		select {
		case <-ctx.Done():
			err := p.errorf("%s was not ready within %s (last check: %v): %w", p.name, timeout, last, ctx.Err())
			p.Close()
			return err
		case <-p.done:
		case <-tick.C:
		}
	}
}

// outputError is an error from a peer process, carrying its output.
type outputError struct {
	err    error
	name   string
	output string
}

func (e *outputError) Error() string {
	out := strings.TrimSpace(e.output)
	if out == "" {
		return e.err.Error() + " (" + e.name + " printed nothing)"
	}
	return e.err.Error() + "\n--- " + e.name + " output ---\n" + out + "\n--- end of " + e.name + " output ---"
}

func (e *outputError) Unwrap() error { return e.err }

// tailBuffer is an io.Writer keeping the last limit bytes written.
type tailBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped bool
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) >= b.limit {
		b.buf = append(b.buf[:0], p[len(p)-b.limit:]...)
		b.dropped = true
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.dropped = true
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// String is the kept output, marked when earlier output was dropped.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return "[earlier output dropped]\n" + string(b.buf)
	}
	return string(b.buf)
}
