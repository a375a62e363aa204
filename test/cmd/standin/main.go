// Command standin runs airlock's local stand-in for Envoy (test/envoydriver)
// with an Envoy bootstrap file, for trying airlock by hand on a machine
// without Envoy: `airlock envoy bootstrap --config F > envoy.yaml` then
// `go run ./test/cmd/standin -c envoy.yaml`. With Envoy, run `envoy -c
// envoy.yaml` instead. Not for production.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

func main() {
	path := flag.String("c", "envoy.yaml", "Envoy bootstrap (YAML or JSON)")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintf(os.Stderr, "standin: %v\n", err)
		os.Exit(1)
	}
}

func run(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b, err := envoy.ParseBootstrap(src)
	if err != nil {
		return err
	}
	cfg, err := envoydriver.FromBootstrap(b)
	if err != nil {
		return err
	}
	d, err := envoydriver.New(cfg, envoydriver.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Printf("local stand-in for Envoy listening on http://%s (bootstrap %s)\n", d.Addr(), path)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
