// Command issuer runs the test OIDC issuer (test/oidcissuer) on a fixed
// address and writes an Okta-shaped access token to a file, for trying
// airlock by hand (README quick start). Not for production.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9400", "listen address")
	aud := flag.String("audience", "http://127.0.0.1:10000/mcp/everything", "token audience: the target's resource URI")
	sub := flag.String("subject", "00u-alice", "token subject (the user)")
	scopes := flag.String("scopes", "mcp.read", "space-separated scopes")
	out := flag.String("token-file", "token.txt", "where to write the token")
	flag.Parse()
	iss, err := oidcissuer.New(oidcissuer.Options{Addr: *addr, Path: "/oauth2/default", TokenTTL: 8 * time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer iss.Close()
	tok, err := iss.Mint(oidcissuer.Token{Subject: *sub, User: *sub, ClientID: "0oa-agent", Scopes: strings.Fields(*scopes), Groups: []string{"engineering"}, Audience: []string{*aud}})
	if err == nil {
		err = os.WriteFile(*out, []byte(tok), 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("issuer %s serving; a token for %s (aud %s) is in %s\n", iss.URL(), *sub, *aud, *out)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
