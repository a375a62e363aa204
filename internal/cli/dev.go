package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-mcp/airlock/internal/devissuer"
)

// devCmd is `airlock dev`: tools for trying airlock on one machine, never
// for production (`vault server -dev` is the model).
func devCmd(env *Env) *cobra.Command {
	return parent(groupServer, "dev", "run a local OIDC issuer and get tokens from it, to try airlock (NOT for production)",
		devIssuerCmd(env), devTokenCmd(env))
}

func devIssuerCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer [--addr 127.0.0.1:9400]",
		Short: "serve a local OIDC provider (loopback only, signs anyone in) until Ctrl-C",
		Args:  noArgs,
	}
	addr := cmd.Flags().String("addr", "127.0.0.1:9400", "loopback address to listen on")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		iss, err := devissuer.Start(*addr)
		if err != nil {
			return err
		}
		defer iss.Close()
		w := env.Stdout
		fmt.Fprintf(w, "airlock dev issuer: %s\n", iss.URL())
		fmt.Fprintln(w, "  ********************************************************************")
		fmt.Fprintln(w, "  NOT FOR PRODUCTION: anyone on this machine can sign in as anyone and")
		fmt.Fprintln(w, "  get a token; the signing key lives in memory and dies with it.")
		fmt.Fprintln(w, "  ********************************************************************")
		fmt.Fprintln(w, "  users:")
		for _, u := range devissuer.Users {
			fmt.Fprintf(w, "    %-6s sub %-10s groups %-18s %s\n", u.Name, u.Subject, strings.Join(u.Groups, ","), u.Role)
		}
		fmt.Fprintf(w, "  in airlock.yaml:  issuers: [{name: dev, url: %s}]\n", iss.URL())
		fmt.Fprintf(w, "                    inbox: {issuer: %s, client_id: airlock-inbox, redirect_url: <public_url>/airlock/inbox/callback}\n", iss.URL())
		fmt.Fprintf(w, "  a token:          airlock dev token --issuer %s --user alice --audience <public_url>/mcp/<target>\n", iss.URL())
		<-cmd.Context().Done()
		return nil
	}
	return cmd
}

func devTokenCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token --issuer URL --user alice|bob|erin [--audience AUD] [--client-id ID] [--scope S]",
		Short: "print an access token for a user from `airlock dev issuer`",
		Args:  noArgs,
	}
	fs := cmd.Flags()
	issuer := fs.String("issuer", "http://127.0.0.1:9400", "the dev issuer's URL")
	user := fs.String("user", "", "alice (agent user), bob (approver) or erin (auditor)")
	audience := fs.String("audience", "", "the token's audience: a target's resource URL, or <public_url>/airlock for the approvals API")
	clientID := fs.String("client-id", "", "the client id claim (default: dev-cli)")
	scope := fs.String("scope", "", "space-separated scopes")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *user == "" {
			return usageError{msg: "--user is required (alice, bob or erin)"}
		}
		form := url.Values{"grant_type": {"client_credentials"}, "user": {*user}}
		for k, v := range map[string]string{"audience": *audience, "client_id": *clientID, "scope": *scope} {
			if v != "" {
				form.Set(k, v)
			}
		}
		req, err := http.NewRequestWithContext(cmd.Context(), "POST", strings.TrimRight(*issuer, "/")+"/token", strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := env.HTTPClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return fmt.Errorf("%s/token: %d, not a token response: %w", *issuer, resp.StatusCode, err)
		}
		if out.AccessToken == "" {
			return fmt.Errorf("%s/token: %s: %s", *issuer, out.Error, out.Description)
		}
		_, err = fmt.Fprintln(env.Stdout, out.AccessToken)
		return err
	}
	return cmd
}
