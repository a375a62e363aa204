// Package pgtest runs a throw-away PostgreSQL server for tests: initdb of a
// fresh cluster in a temporary directory, one postgres process on a free
// loopback port, started once per test binary (Run in TestMain) and
// stopped when the tests end. Each test gets its own database (DSN).
//
// Nothing is skipped: when the PostgreSQL server binaries are missing the
// tests fail with the install hint (scripts/test-deps.sh installs Debian's
// postgresql). PostgreSQL refuses to run as root, so under root (CI) the
// cluster is owned by and run as an unprivileged user (postgres when the
// package created it, else nobody) through setpriv.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// InstallHint says how to get the server binaries.
const InstallHint = "PostgreSQL server binaries (initdb, postgres) not found: run scripts/test-deps.sh " +
	"(Debian: apt-get install -y postgresql), or set AIRLOCK_PG_BIN to the directory holding them"

// superuser is the cluster's superuser name (trust authentication on
// loopback only: the cluster lives as long as the test binary).
const superuser = "airlock"

// Server is a running throw-away cluster.
type Server struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	n    atomic.Int64
}

var (
	mu      sync.Mutex
	srv     *Server
	srvErr  error
	started bool
)

// Run runs the tests of m and stops the server if one was started. Use it
// from TestMain: os.Exit(pgtest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if srv != nil {
		srv.stop()
		srv = nil
	}
	return code
}

// DSN starts the server on first use and returns the connection string of
// a new, empty database for t. A missing server binary or a server that
// does not start fails t.
func DSN(t testing.TB) string {
	t.Helper()
	s, err := get()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	if err := s.exec("postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	return s.dsn(name)
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.Port, db)
}

func get() (*Server, error) {
	mu.Lock()
	defer mu.Unlock()
	if !started {
		started = true
		srv, srvErr = start()
	}
	return srv, srvErr
}

// BinDir finds initdb and postgres: AIRLOCK_PG_BIN, else the newest
// /usr/lib/postgresql/N/bin, else PATH.
func BinDir() (string, error) {
	if d := os.Getenv("AIRLOCK_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("AIRLOCK_PG_BIN=%s holds no initdb: %s", d, InstallHint)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
				return d, nil
			}
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New(InstallHint)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// runAs is the unprivileged account a root process runs PostgreSQL as.
func runAs() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return u, nil
		}
	}
	return nil, errors.New("running as root and neither user postgres nor nobody exists: PostgreSQL refuses to run as root")
}

func start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	u, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "airlock-pgtest-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the unprivileged user must reach data/
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	var uid, gid int
	if u != nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(data, uid, gid); err != nil {
			return nil, fmt.Errorf("giving %s to user %s: %w", data, u.Username, err)
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), args...)
		c.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		if u != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			c.Env = append(c.Env, "HOME="+dir)
		}
		c.Dir = dir
		return c
	}
	out, err := command("initdb", "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions").CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb in %s: %v\n%s", data, err, out)
	}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Port: port, dir: dir, done: make(chan struct{})}
		s.log, err = os.Create(filepath.Join(dir, fmt.Sprintf("postgres-%d.log", attempt)))
		if err != nil {
			return nil, err
		}
		s.cmd = command("postgres", "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200", "-c", "shared_buffers=32MB")
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		s.cmd.SysProcAttr = mergeAttr(s.cmd.SysProcAttr)
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting postgres: %w", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if last = s.ready(); last == nil {
			return s, nil
		}
		s.kill()
	}
	_ = os.RemoveAll(dir)
	return nil, last
}

func mergeAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	if a == nil {
		a = &syscall.SysProcAttr{}
	}
	a.Pdeathsig = syscall.SIGKILL // never outlive the test binary
	a.Setpgid = true
	return a
}

// ready waits (bounded) until the server accepts connections or exits.
func (s *Server) ready() error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.log.Name())
			return fmt.Errorf("postgres exited while starting:\n%s", b)
		default:
		}
		if err := s.exec("postgres", "SELECT 1"); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("postgres did not accept connections within 60s")
}

// exec runs one statement on database db.
func (s *Server) exec(db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return execSQL(ctx, s.dsn(db), sql)
}

func (s *Server) stop() {
	s.kill()
	_ = os.RemoveAll(s.dir)
}

// kill stops the postgres process.
func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if s.log != nil {
		_ = s.log.Close()
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
