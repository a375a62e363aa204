package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a target server running as a child process, its output going
// to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startProc starts argv with extra environment variables; stdout (unless
// taken by the caller through stdout) and stderr go to logPath.
func startProc(name, logPath string, env []string, stdout io.Writer, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the process to end (SIGTERM), and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// fail wraps err with the process's exit status and log tail.
func (p *proc) fail(err error) error {
	msg := fmt.Sprintf("%s: %v", p.name, err)
	select {
	case <-p.exited:
		msg += fmt.Sprintf(" (process exited: %v)", p.waitErr)
	default:
	}
	if tail := p.logTail(); tail != "" {
		msg += "\n--- " + p.logPath + " (end) ---\n" + tail
	}
	return errors.New(msg)
}

// freePort finds a loopback port nobody listens on now, for a child that
// takes its address in a config file.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// startNoop runs `authzload noop` (this very binary) on a free port and
// reads the address it prints.
func startNoop(ctx context.Context, self, logPath string) (*proc, string, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("noop", logPath, nil, pw, self, "noop", "--listen", "127.0.0.1:0")
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, "", err
	}
	addrc := make(chan string, 1)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), listeningPrefix); ok {
				addrc <- a
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addrc:
		return p, a, nil
	case <-p.exited:
		return nil, "", p.fail(errors.New("exited before listening"))
	case <-time.After(10 * time.Second):
		p.stop(time.Second)
		return nil, "", p.fail(errors.New("did not print its address within 10s"))
	case <-ctx.Done():
		p.stop(time.Second)
		return nil, "", ctx.Err()
	}
}
