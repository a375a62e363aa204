package extauthz

import (
	"fmt"
	"strings"
)

// origins checks the Origin header: the MCP Streamable HTTP transport says
// servers MUST validate Origin and answer an invalid one with 403
// (DNS-rebinding protection). airlock is the server agents see, so it
// checks before anything else. Requests without Origin pass: agents are
// not browsers.
type origins struct {
	exact map[string]bool
	// anyPort holds "scheme://host" for entries written "scheme://host:*".
	anyPort map[string]bool
}

func newOrigins(list []string) *origins {
	o := &origins{exact: map[string]bool{}, anyPort: map[string]bool{}}
	for _, e := range list {
		e = strings.ToLower(strings.TrimRight(e, "/"))
		if base, ok := strings.CutSuffix(e, ":*"); ok {
			o.anyPort[base] = true
		} else {
			o.exact[e] = true
		}
	}
	return o
}

// check returns "" when the origin is acceptable, else the reason.
func (o *origins) check(origin string) string {
	if origin == "" {
		return ""
	}
	v := strings.ToLower(origin)
	if o.exact[v] {
		return ""
	}
	if i := strings.LastIndexByte(v, ':'); i > len("https://") {
		if o.anyPort[v[:i]] {
			return ""
		}
	} else if o.anyPort[v] {
		return ""
	}
	if len(origin) > 100 {
		origin = origin[:100] + "…"
	}
	return fmt.Sprintf("origin %q is not allowed to call MCP targets through this gateway (allowed_origins)", origin)
}
