package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-mcp/airlock/xds"
)

// envoyStatusCmd is `airlock envoy status`: every Envoy connected to a
// running airlock's ADS server, read from its HTTP listener (xds.StatusPath,
// beside /metrics, unauthenticated like it), as istioctl proxy-status shows
// the proxies of istiod.
func envoyStatusCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [--server URL] [--output table|json]",
		Short: "show each Envoy connected over ADS: version, what it acknowledged or rejected, how far behind it is",
		Args:  noArgs,
	}
	fs := cmd.Flags()
	server := fs.String("server", "", "airlock's HTTP address (default $AIRLOCK_SERVER or "+defaultServer+")")
	output := outputFlag(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "time limit of the call")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		base, err := serverURL(*server, env)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		st, raw, err := fetchXDSStatus(ctx, env.HTTPClient, base)
		if err != nil {
			return err
		}
		if *output == "json" {
			_, err := env.Stdout.Write(raw)
			return err
		}
		printXDSStatus(env.Stdout, st, env.Now())
		return nil
	}
	return cmd
}

// serverURL settles --server as the access verbs do.
func serverURL(flag string, env *Env) (string, error) {
	server := flag
	if server == "" {
		server = env.Getenv("AIRLOCK_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return "", fmt.Errorf("--server %q: want an http:// or https:// URL", server)
	}
	return server, nil
}

func fetchXDSStatus(ctx context.Context, hc *http.Client, base string) (*xds.Status, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+xds.StatusPath, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("cannot reach airlock at %s: %w", base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s%s: %w", base, xds.StatusPath, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil, fmt.Errorf("%s%s: not found — is xDS on (listen.xds) and --server airlock's HTTP address?", base, xds.StatusPath)
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("%s%s answered %s", base, xds.StatusPath, resp.Status)
	}
	var st xds.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, fmt.Errorf("%s%s is not the xDS status JSON: %w", base, xds.StatusPath, err)
	}
	return &st, raw, nil
}

// statusTypes are the columns of the table, one per resource type.
var statusTypes = []struct{ head, name string }{
	{"LISTENERS", "listeners"}, {"CLUSTERS", "clusters"}, {"SCOPED ROUTES", "scoped_routes"},
}

func printXDSStatus(w io.Writer, st *xds.Status, now time.Time) {
	fmt.Fprintf(w, "Envoy floor %s; %d grant route(s) live\n", st.MinEnvoyVersion, st.GrantRoutes)
	if len(st.Streams) == 0 {
		fmt.Fprintln(w, "no Envoy connected")
	} else {
		tw := table(w)
		head := "NODE\tVERSION\tMODE"
		for _, c := range statusTypes {
			head += "\t" + c.head
		}
		fmt.Fprintln(tw, head+"\tBEHIND\tLAST NACK")
		for _, s := range st.Streams {
			row := fmt.Sprintf("%s\t%s\t%s", or(clean(s.Node, 40), "-"), clean(s.EnvoyVersion, 20), s.Mode)
			behind := 0
			var last *xds.TypeStatus
			for _, c := range statusTypes {
				state := "-"
				for i := range s.Types {
					t := &s.Types[i]
					if t.Type != c.name {
						continue
					}
					state = t.State
					behind += t.Behind
					if t.LastNACKAt != nil && (last == nil || t.LastNACKAt.After(*last.LastNACKAt)) {
						last = t
					}
				}
				row += "\t" + state
			}
			nack := "-"
			if last != nil {
				nack = fmt.Sprintf("%s %s ago: %s", last.Type, age(now.Sub(*last.LastNACKAt)), clean(last.LastNACK, 80))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", row, behind, nack)
		}
		_ = tw.Flush()
	}
	if len(st.Refused) > 0 {
		fmt.Fprintln(w)
		tw := table(w)
		fmt.Fprintln(tw, "REFUSED NODE\tVERSION\tTIMES\tLAST\tREASON")
		for _, r := range st.Refused {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\t%s\n", clean(r.Node, 40), or(clean(r.EnvoyVersion, 20), "-"), r.Count, age(now.Sub(r.At)), clean(r.Reason, 0))
		}
		_ = tw.Flush()
	}
}
