package clickhouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrZooKeeperNotInstalled says how to get ZooKeeper when it is missing.
var ErrZooKeeperNotInstalled = errors.New("ZooKeeper is not installed: run `make test-deps` (apt-get install zookeeper; it needs java)")

// zkJar is where Debian's zookeeper package puts the server; its manifest
// Class-Path names the jars it needs from /usr/share/java.
const zkJar = "/usr/share/java/zookeeper.jar"

// ZooKeeper is a standalone ZooKeeper server on 127.0.0.1 for ClickHouse
// replication and ON CLUSTER DDL in tests: its data and log live in a
// temporary directory removed by Close.
type ZooKeeper struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartZooKeeper starts Debian's ZooKeeper (3.8) in standalone mode on a
// free loopback port, with its admin server off, and returns once it
// opens a session.
func StartZooKeeper(ctx context.Context) (*ZooKeeper, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("%w (java: %v)", ErrZooKeeperNotInstalled, err)
	}
	if _, err := os.Stat(zkJar); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrZooKeeperNotInstalled, err)
	}
	dir, err := os.MkdirTemp("", "airlock-zookeeper-")
	if err != nil {
		return nil, err
	}
	z := &ZooKeeper{dir: dir}
	ports, err := freePorts(1)
	if err != nil {
		z.cleanup()
		return nil, err
	}
	z.port = ports[0]
	cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%[1]s/data
clientPort=%[2]d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
`, dir, z.port)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		z.cleanup()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		z.cleanup()
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		z.cleanup()
		return nil, err
	}
	// slf4j-nop keeps ZooKeeper's INFO chatter out of the test output; the
	// log file still gets stderr (start-up failures).
	cp := zkJar + ":/usr/share/java/slf4j-nop.jar"
	cmd := exec.Command(java, "-Xmx256m", "-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		z.cleanup()
		return nil, fmt.Errorf("starting ZooKeeper: %w", err)
	}
	z.cmd, z.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(z.exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if z.ready() {
			return z, nil
		}
		select {
		case <-z.exited:
			err := fmt.Errorf("ZooKeeper exited during start-up: %s", z.logTail())
			z.cleanup()
			return nil, err
		case <-ctx.Done():
			err := fmt.Errorf("ZooKeeper did not answer on %s: %s", z.Addr(), z.logTail())
			_ = z.Close()
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Host and Port are where ZooKeeper listens.
func (z *ZooKeeper) Host() string { return "127.0.0.1" }

// Port is ZooKeeper's client port.
func (z *ZooKeeper) Port() int { return z.port }

// Addr is host:port of ZooKeeper's client port.
func (z *ZooKeeper) Addr() string { return "127.0.0.1:" + strconv.Itoa(z.port) }

// ready opens a session (the ConnectRequest of ZooKeeper's protocol) and
// closes it: ZooKeeper answers `ruok` before it serves sessions, and a
// ClickHouse whose first session fails at start-up may crash later.
func (z *ZooKeeper) ready() bool {
	c, err := net.DialTimeout("tcp", z.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	// protocolVersion, lastZxidSeen, timeOut, sessionId, passwd (16 zero
	// bytes), readOnly: 4+8+4+8+4+16+1 bytes after the length.
	req := make([]byte, 4+45)
	binary.BigEndian.PutUint32(req, 45)
	binary.BigEndian.PutUint32(req[4+12:], 10000)
	binary.BigEndian.PutUint32(req[4+24:], 16)
	if _, err := c.Write(req); err != nil {
		return false
	}
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return false
	}
	resp := make([]byte, binary.BigEndian.Uint32(n[:]))
	if len(resp) < 16 {
		return false
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return false
	}
	if binary.BigEndian.Uint32(resp[4:]) == 0 { // negotiated timeout 0: refused
		return false
	}
	// closeSession: xid 1, type -11.
	bye := make([]byte, 12)
	binary.BigEndian.PutUint32(bye, 8)
	binary.BigEndian.PutUint32(bye[4:], 1)
	binary.BigEndian.PutUint32(bye[8:], uint32(0xFFFFFFF5))
	_, _ = c.Write(bye)
	return true
}

// Close stops ZooKeeper and removes its directory.
func (z *ZooKeeper) Close() error {
	defer z.cleanup()
	if z.cmd == nil {
		return nil
	}
	select {
	case <-z.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-z.exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-z.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("ZooKeeper (pid %d) did not exit", z.cmd.Process.Pid)
	}
}

func (z *ZooKeeper) cleanup() { _ = os.RemoveAll(z.dir) }

func (z *ZooKeeper) logTail() string {
	b, err := os.ReadFile(filepath.Join(z.dir, "zookeeper.log"))
	if err != nil || len(b) == 0 {
		return "no ZooKeeper log"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
