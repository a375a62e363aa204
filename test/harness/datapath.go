package harness

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

// DataPath is what carries agents' HTTP to the MCP servers: real Envoy when
// an envoy binary is on PATH, else the local stand-in (test/envoydriver),
// both configured with the same bootstrap airlock renders.
type DataPath interface {
	Kind() string // "envoy" or "envoydriver (local stand-in for Envoy)"
	Close() error
}

// startDataPath runs the bootstrap. addr is the listener address already
// in the bootstrap.
func startDataPath(ctx context.Context, b *bootstrapv3.Bootstrap, addr, workDir, version string) (DataPath, error) {
	if bin, err := exec.LookPath("envoy"); err == nil && os.Getenv("AIRLOCK_NO_ENVOY") == "" {
		return startEnvoy(ctx, bin, b, addr, workDir)
	}
	cfg, err := envoydriver.FromBootstrap(b)
	if err != nil {
		return nil, err
	}
	d, err := envoydriver.New(cfg, envoydriver.Options{EnvoyVersion: version})
	if err != nil {
		return nil, err
	}
	return driverPath{d}, nil
}

// startADSDataPath runs an ADS bootstrap: real Envoy when on PATH, else
// the stand-in's ADS client (which starts its driver on the first
// complete configuration). addr is the listener address the ADS server
// renders (public_url's port).
func startADSDataPath(ctx context.Context, b *bootstrapv3.Bootstrap, addr, workDir string, log *slog.Logger, counter *ADSCounter, version string) (DataPath, error) {
	if bin, err := exec.LookPath("envoy"); err == nil && os.Getenv("AIRLOCK_NO_ENVOY") == "" {
		return startEnvoy(ctx, bin, b, addr, workDir)
	}
	a, err := envoydriver.ConnectBootstrap(b, envoydriver.ADSOptions{Logger: log.With("component", "envoydriver"), OnResponse: counter.observe, EnvoyVersion: version})
	if err != nil {
		return nil, err
	}
	if _, err := a.WaitReady(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		a.Close()
		return nil, fmt.Errorf("the stand-in fed over ADS does not listen on %s: %w", addr, err)
	}
	return adsPath{a}, nil
}

type adsPath struct{ *envoydriver.ADS }

// ADSCounter tallies what the stand-in's ADS client was told: how often
// each resource was removed (delta removed_resources, or left out of a
// SotW state) and how many responses it ACKed or NACKed. A restart that
// keeps routes removes no live grant's scope.
type ADSCounter struct {
	mu        sync.Mutex
	removed   map[string]int
	acks      int
	nacks     int
	lastNACKs []string
}

func (c *ADSCounter) observe(r envoydriver.ADSResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed == nil {
		c.removed = map[string]int{}
	}
	for _, n := range r.Removed {
		c.removed[n]++
	}
	if r.Err != nil {
		c.nacks++
		c.lastNACKs = append(c.lastNACKs, r.Err.Error())
		return
	}
	c.acks++
}

// Removed is how many times resource name was removed so far.
func (c *ADSCounter) Removed(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removed[name]
}

// ACKs is the number of responses accepted so far.
func (c *ADSCounter) ACKs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acks
}

// NACKs is the number of responses rejected so far, and their errors.
func (c *ADSCounter) NACKs() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nacks, append([]string(nil), c.lastNACKs...)
}

func (adsPath) Kind() string { return "envoydriver over ADS (local stand-in for Envoy)" }

type driverPath struct{ *envoydriver.Driver }

func (driverPath) Kind() string { return "envoydriver (local stand-in for Envoy)" }

type envoyProc struct{ cmd *exec.Cmd }

func (envoyProc) Kind() string { return "envoy" }

func (e envoyProc) Close() error {
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return nil
}

// startEnvoy runs a real Envoy with the bootstrap (admin moved to a free
// port so several can run at once) and waits for its listener.
func startEnvoy(ctx context.Context, bin string, b *bootstrapv3.Bootstrap, addr, workDir string) (DataPath, error) {
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	b.GetAdmin().GetAddress().GetSocketAddress().PortSpecifier = nil
	out, err := envoy.YAML(b)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(workDir, "envoy.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path, "--base-id", strconv.Itoa(adminPort), "--admin-address-path", filepath.Join(workDir, "admin"), "-l", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(workDir, "envoy.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start envoy: %w", err)
	}
	p := envoyProc{cmd}
	if err := waitTCP(ctx, addr, 20*time.Second); err != nil {
		p.Close()
		log, _ := os.ReadFile(filepath.Join(workDir, "envoy.log"))
		return nil, fmt.Errorf("envoy did not listen on %s: %w\n%s", addr, err, log)
	}
	return p, nil
}

func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
