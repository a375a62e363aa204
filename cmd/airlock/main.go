// Command airlock is the airlock gateway's single binary: `serve` runs the
// services Envoy talks to, and the other verbs are the operator CLI. The
// verbs, their flags and help live in one command table in internal/cli.
package main

import (
	"os"

	"github.com/airlock-mcp/airlock/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
