package cli_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

// `airlock dev issuer` says it is not for production, refuses anything but
// loopback, and `airlock dev token` gets a user's token from it.
func TestDevIssuerAndToken(t *testing.T) {
	var errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"dev", "issuer", "--addr", "0.0.0.0:0"}, cli.Env{Stdout: &bytes.Buffer{}, Stderr: &errb}); code != 1 || !strings.Contains(errb.String(), "loopback only") {
		t.Errorf("dev issuer on 0.0.0.0: exit %d, %s", code, errb.String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"dev", "issuer", "--addr", addr}, cli.Env{Stdout: &out, Stderr: &out})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "NOT FOR PRODUCTION") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var tok, terr bytes.Buffer
	code := cli.Run(context.Background(), []string{"dev", "token", "--issuer", "http://" + addr, "--user", "bob", "--audience", "http://127.0.0.1:10000/airlock"}, cli.Env{Stdout: &tok, Stderr: &terr})
	if code != 0 || strings.Count(strings.TrimSpace(tok.String()), ".") != 2 {
		t.Errorf("dev token: exit %d, stderr %s", code, terr.String())
	}
	terr.Reset()
	if code := cli.Run(context.Background(), []string{"dev", "token", "--issuer", "http://" + addr, "--user", "mallory"}, cli.Env{Stdout: &tok, Stderr: &terr}); code != 1 || !strings.Contains(terr.String(), "alice, bob or erin") {
		t.Errorf("unknown user: exit %d, %s", code, terr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("dev issuer stopped with %d: %s", code, out.String())
	}
}
