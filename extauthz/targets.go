package extauthz

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// target is one configured MCP server with everything Check needs
// precomputed: audiences, trusted issuers, the credential header value and
// the WWW-Authenticate challenge.
type target struct {
	cfg        config.Target
	input      policy.TargetInput
	audiences  []string
	issuers    map[string]bool // issuer URLs; nil = all configured issuers
	credHeader string
	credValue  string // the secret; never logged
	prmURL     string
}

type targets struct {
	byName map[string]*target
	sorted []*target // longest path prefix first
}

func newTargets(cfg *config.Config) (*targets, error) {
	ts := &targets{byName: map[string]*target{}}
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
			cfg:        tc,
			input:      policy.TargetInput{Name: tc.Name, Resource: tc.Resource, ScopesRequired: tc.ScopesRequired},
			audiences:  []string{tc.Resource},
			credHeader: tc.Credential.Header,
			credValue:  cred,
			prmURL:     cfg.PublicURL + tc.MetadataPath(),
		}
		if len(tc.Issuers) > 0 {
			t.issuers = map[string]bool{}
			for _, n := range tc.Issuers {
				t.issuers[issuerURL[n]] = true
			}
		}
		ts.byName[tc.Name] = t
		ts.sorted = append(ts.sorted, t)
	}
	sort.Slice(ts.sorted, func(i, j int) bool { return len(ts.sorted[i].cfg.PathPrefix) > len(ts.sorted[j].cfg.PathPrefix) })
	return ts, nil
}

// match finds the target: the route's context extension when Envoy's config
// names it (the route already matched), else the longest path prefix.
func (ts *targets) match(req *Request) *target {
	if n := req.ContextExtensions["airlock_target"]; n != "" {
		return ts.byName[n]
	}
	path := req.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, t := range ts.sorted {
		p := t.cfg.PathPrefix
		if path == p || (strings.HasPrefix(path, p) && path[len(p)] == '/') {
			return t
		}
	}
	return nil
}

func (t *target) trusts(issuer string) bool {
	return t.issuers == nil || t.issuers[issuer]
}
