package extauthz

import (
	"fmt"
	"strings"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/wire"
)

// target is one configured MCP server with everything Check needs
// precomputed: audiences, trusted issuers, the credential header value and
// the WWW-Authenticate challenge.
type target struct {
	cfg       config.Target
	input     policy.TargetInput
	audiences []string
	// issuerAudiences: the target also accepts the issuer's own audiences
	// (accept_issuer_audiences, which configuration allows only with
	// scopes_required).
	issuerAudiences bool
	issuers         map[string]bool // issuer URLs; nil = all configured issuers
	credHeader      string
	credValue       string // the secret; never logged
	prmURL          string
}

type targets struct {
	byName map[string]*target
	byPath map[string]*target // PathPrefix -> target
}

func newTargets(cfg *config.Config) (*targets, error) {
	ts := &targets{byName: map[string]*target{}, byPath: map[string]*target{}}
	issuerURL := map[string]string{}
	for _, is := range cfg.Issuers {
		issuerURL[is.Name] = is.URL
	}
	for _, tc := range cfg.Targets {
		cred, err := tc.Credential.Resolve()
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", tc.Name, err)
		}
		t := &target{
			cfg:             tc,
			input:           policy.TargetInput{Name: tc.Name, Resource: tc.Resource, ScopesRequired: tc.ScopesRequired},
			audiences:       []string{tc.Resource},
			issuerAudiences: tc.AcceptIssuerAudiences,
			credHeader:      tc.Credential.Header,
			credValue:       cred,
			prmURL:          cfg.PublicURL + tc.MetadataPath(),
		}
		if len(tc.Issuers) > 0 {
			t.issuers = map[string]bool{}
			for _, n := range tc.Issuers {
				t.issuers[issuerURL[n]] = true
			}
		}
		ts.byName[tc.Name] = t
		ts.byPath[tc.PathPrefix] = t
	}
	return ts, nil
}

// match finds the target: the route's context extension when Envoy's config
// names it (the route already matched), else the target whose endpoint
// path is exactly the request's path. Either way the caller then checks
// the path with endpoint.
func (ts *targets) match(req *Request) *target {
	if n := req.ContextExtensions[wire.ContextTarget]; n != "" {
		return ts.byName[n]
	}
	return ts.byPath[req.Path]
}

// endpoint says why the request's path is not the target's MCP endpoint,
// or "" when it is. A target exposes exactly its endpoint: nothing below
// it (a path under the prefix would reach the upstream's other routes with
// the gateway's credential), no trailing slash, no percent-encoded,
// "..", "." or "//" spelling of it, and no query string (MCP endpoints take
// none, and the SDK servers ignore one, so a query only hides things).
// The raw path is compared byte for byte: Envoy normalizes paths before
// ext_authz, and this is the second line.
func (t *target) endpoint(path string) string {
	if path == t.cfg.PathPrefix {
		return ""
	}
	if p, _, ok := strings.Cut(path, "?"); ok && p == t.cfg.PathPrefix {
		return fmt.Sprintf("the MCP endpoint %s takes no query string", t.cfg.PathPrefix)
	}
	return fmt.Sprintf("no MCP endpoint is served at %s (target %s serves exactly %s)", pathOnly(path), t.cfg.Name, t.cfg.PathPrefix)
}

func (t *target) trusts(issuer string) bool {
	return t.issuers == nil || t.issuers[issuer]
}
