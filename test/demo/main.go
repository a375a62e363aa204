// Command demo runs airlock end to end on this machine and shows an agent
// session going through it: `make demo`. It starts an OIDC issuer, two MCP
// servers (the Go SDK one and the npm server-everything), `airlock serve`
// as its own process, and the data path — real Envoy if an envoy binary is
// on PATH, else the local stand-in for Envoy — then runs a scripted agent
// and prints what happened, step by step, ending with airlock's decision
// log. It keeps running for you to try by hand until Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/airlock-mcp/airlock/test/harness"
)

func main() {
	bin := flag.String("airlock", "bin/airlock", "the airlock binary to run")
	once := flag.Bool("once", false, "exit after the scripted session instead of waiting for Ctrl-C")
	clean := flag.Bool("clean", false, "delete the demo's directory (config, grants, recording) on exit")
	flag.Parse()
	if err := run(*bin, *once, !*clean, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// run exits cleanly (nil) when interrupted: Ctrl-C is how a user ends the
// demo, not a failure, so make must not report "Error 1".
func run(bin string, once, keep bool, out io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &printer{w: out}
	p.title("Starting airlock and its peers")

	decisions := &decisionLog{}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer func() {
		if err != nil && ctx.Err() != nil {
			fmt.Fprintln(out, "\n  interrupted; stopping")
			err = nil
		}
	}()
	devIssuer, stopIssuer, err := startDevIssuer(ctx, bin)
	if err != nil {
		cancel()
		return err
	}
	defer stopIssuer()
	s, err := harness.Start(sctx, harness.Options{ADS: true, Everything: true, AirlockBinary: bin, AirlockLog: decisions, HoldWindow: 20 * time.Second, KeepWorkDir: keep,
		ExtraConfig: inboxConfig(devIssuer)})
	cancel()
	if err != nil {
		return err
	}
	defer s.Close()
	cfgPath := filepath.Join(s.WorkDir, "airlock.yaml")
	if keep {
		// Said again after Stopping: the directory outlives the demo.
		defer func() {
			p.title("Kept for you")
			p.kv("config", cfgPath)
			p.kv("directory (grants, recording)", s.WorkDir)
			fmt.Fprintf(out, "  %s sessions --config %s\n", bin, cfgPath)
			fmt.Fprintf(out, "  %s replay --config %s SESSION\n", bin, cfgPath)
			fmt.Fprintf(out, "  rm -r %s   # when done\n", s.WorkDir)
		}()
	}
	p.kv("config", cfgPath)
	p.kv("OIDC issuer (Okta-shaped tokens)", s.Issuer.URL())
	p.kv("inbox sign-in (airlock dev issuer)", devIssuer+"  (NOT for production)")
	p.kv("web inbox", s.BaseURL+"/airlock/inbox/")
	p.kv("MCP server \"github\" (Go SDK)", s.GoServer.URL())
	p.kv("MCP server \"everything\" (npm)", s.Everything.URL())
	p.kv("airlock ext_authz (gRPC)", s.AuthzAddr)
	p.kv("airlock HTTP (metadata, metrics)", "http://"+s.HTTPAddr)
	p.kv("data path", s.DataPath.Kind())
	if s.DataPath.Kind() != "envoy" {
		p.note("No envoy binary on PATH: the data path is airlock's local stand-in for Envoy")
		p.note("(test/envoydriver), running the same bootstrap `airlock envoy bootstrap` prints.")
	}
	p.kv("agents connect to", s.BaseURL+"/mcp/<target>")

	if err := script(ctx, s, p, bin); err != nil {
		return err
	}

	p.title("Audit trail so far (airlock's decision log)")
	decisions.print(p)

	p.title("6. The session, replayed from airlock's recording")
	if err := replayStep(ctx, p, bin, cfgPath); err != nil {
		return err
	}

	if once {
		return nil
	}
	tok, err := s.Token("00u-you", "github")
	if err != nil {
		return err
	}
	tokFile := filepath.Join(s.WorkDir, "token")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		return err
	}
	p.title("Try it yourself (Ctrl-C stops everything)")
	fmt.Fprintf(out, "  TOKEN=$(cat %s)   # alice's agent, for target github\n", tokFile)
	fmt.Fprintf(out, "  curl -s %s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n", s.TargetURL("github"))
	fmt.Fprintf(out, "       -H 'Accept: application/json, text/event-stream' \\\n")
	fmt.Fprintf(out, "       -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"curl\",\"version\":\"1\"}}}'\n")
	fmt.Fprintf(out, "  curl -s http://%s/metrics | grep airlock_authz\n", s.HTTPAddr)
	<-ctx.Done()
	p.title("Stopping")
	return nil
}
