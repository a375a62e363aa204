// Package clickhouse runs a real ClickHouse server for tests and
// benchmarks: Debian's clickhouse-server, configured from scratch in a
// temporary directory (listening on 127.0.0.1 only, on free ports, with
// its data, logs and temporary files inside that directory), stopped and
// started again on the same ports and data for outage tests; and a
// cluster of such servers replicating through Debian's ZooKeeper
// (StartCluster) for the audit cluster tests.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
)

// ErrNotInstalled says how to get ClickHouse when it is missing.
var ErrNotInstalled = errors.New("ClickHouse is not installed: run `make test-deps` (apt-get install clickhouse-server)")

// Options for Start; zero values are fine.
type Options struct {
	// Binary is the server executable. Default: clickhouse-server on PATH,
	// else /usr/sbin/clickhouse-server.
	Binary string
	// Dir holds config, data and logs. Default: a new temporary directory,
	// removed by Close.
	Dir string
	// StartTimeout bounds each start. Default 60s.
	StartTimeout time.Duration
	// Nice, when above 0, runs the server (every thread of it) at that
	// nice level: a benchmark that shares its cores with this server
	// lets it ingest without landing its inserts and merges on the
	// measured processes, as a ClickHouse on its own hosts would.
	Nice int
}

// Server is a running (or stopped) ClickHouse.
type Server struct {
	bin      string
	dir      string
	ownDir   bool
	timeout  time.Duration
	nice     int
	tcpPort  int
	httpPort int
	// interserverPort serves replicas fetching parts (cluster only).
	interserverPort int
	cmd             *exec.Cmd
	exited          chan struct{}
}

// Start writes a configuration into the directory and starts the server,
// returning once it answers `SELECT 1` on the native port.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	if err := s.writeConfig(""); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// prepare finds the binary, makes the directory and picks free ports.
func prepare(opts Options) (*Server, error) {
	bin, err := findBinary(opts.Binary)
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: opts.Dir, timeout: opts.StartTimeout, nice: opts.Nice}
	if s.timeout <= 0 {
		s.timeout = 60 * time.Second
	}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "airlock-clickhouse-"); err != nil {
			return nil, err
		}
		s.ownDir = true
	}
	ports, err := freePorts(3)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.tcpPort, s.httpPort, s.interserverPort = ports[0], ports[1], ports[2]
	return s, nil
}

// StartT starts a server for a test or benchmark, failing it when
// ClickHouse cannot run, and stops it when the test ends.
func StartT(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func findBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%w (%s: %v)", ErrNotInstalled, bin, err)
		}
		return bin, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err == nil {
		return "/usr/sbin/clickhouse-server", nil
	}
	return "", ErrNotInstalled
}

// Addr is the native protocol address, 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.tcpPort) }

// HTTPAddr is the HTTP interface address.
func (s *Server) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(s.httpPort) }

// Pid is the server's process id (0 when it is not running).
func (s *Server) Pid() int {
	if !s.Running() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Dir is the server's directory (config, data, logs).
func (s *Server) Dir() string { return s.dir }

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *Server) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{s.bin, "--config-file=" + filepath.Join(s.dir, "config.xml")}
	if s.nice > 0 {
		// nice(1) execs the server in place: the pid stays the server's.
		args = append([]string{"nice", "-n", strconv.Itoa(s.nice)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var last error
	for {
		if last = s.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("clickhouse-server exited during start-up: %s", s.logTail())
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("clickhouse-server did not answer on %s within %s: %v; %s", s.Addr(), s.timeout, last, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping runs SELECT 1 over the native protocol.
func (s *Server) ping(ctx context.Context) error {
	conn, err := chgo.Open(&chgo.Options{Addr: []string{s.Addr()}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var one uint8
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// Stop shuts the server down (SIGTERM, SIGKILL after 20s); its data stays.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM, 20*time.Second)
}

// Kill stops the server at once, as a crash would; its data stays.
func (s *Server) Kill() error {
	return s.signal(syscall.SIGKILL, 20*time.Second)
}

func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	if !s.Running() {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.exited:
		return nil
	case <-time.After(wait):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("clickhouse-server (pid %d) did not exit", s.cmd.Process.Pid)
	}
}

// Restart starts a stopped server again on the same ports and data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Close stops the server and removes its directory if Start made it.
func (s *Server) Close() error {
	err := s.Stop()
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.ownDir {
		_ = os.RemoveAll(s.dir)
	}
}

// logTail returns the end of the server's error log, for start-up errors.
func (s *Server) logTail() string {
	for _, name := range []string{"server.err.log", "stdout.log"} {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		return name + ": " + strings.TrimSpace(string(b))
	}
	return "no server log"
}

// freePorts finds n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
