package config

import (
	"fmt"
	"strings"
)

// checkAudiences keeps every token audience bound to one consumer: a
// target that accepts issuer-level audiences must require scopes, and the
// approvals API's audience is neither a target's resource nor an
// issuer-level audience (a token an agent holds for an MCP target must
// never be good for approving).
func (c *Config) checkAudiences() []error {
	var errs []error
	for i, t := range c.Targets {
		if t.AcceptIssuerAudiences && len(t.ScopesRequired) == 0 {
			errs = append(errs, fieldErr(fmt.Sprintf("targets[%d].accept_issuer_audiences", i),
				"is true but scopes_required is empty: a token for an issuer-level audience (issuers[].audiences, e.g. api://default) is valid for every target of its issuer, so a target that accepts one must require scopes only its own agents are given; set scopes_required, or remove accept_issuer_audiences and have tokens minted for %s", t.Resource))
		}
	}
	aud := c.API.AudienceFor(c.PublicURL)
	if aud == "" || strings.TrimRight(aud, "/") == "" {
		return errs
	}
	for i, t := range c.Targets {
		if t.Resource == aud {
			errs = append(errs, fieldErr("api.audience",
				"%q is also the resource URI of target %q (targets[%d]): an agent's token for that target would be accepted by the approvals API; give the API its own audience", aud, t.Name, i))
		}
	}
	for i, is := range c.Issuers {
		for j, a := range is.Audiences {
			if a == aud {
				errs = append(errs, fieldErr("api.audience",
					"%q is also an issuer-level audience of issuer %q (issuers[%d].audiences[%d]): tokens minted for agents with that audience would be accepted by the approvals API; give the API its own audience", aud, is.Name, i, j))
			}
		}
	}
	return errs
}
