package xds

import (
	"errors"
	"fmt"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
)

// Grant is a live just-in-time grant as far as routing is concerned: which
// target it opens, until when. Whether a call is covered (tool, arguments,
// single use) is ext_authz's decision; the route only has to exist while
// the grant does.
type Grant struct {
	// ID is the grant id ext_authz puts in the x-airlock-grant header.
	ID string
	// Target is the name of the MCP target (internal/config) it opens.
	Target string
	// Tool is the tool the grant covers, if it names one (route metadata only).
	Tool string
	// Expiry is when the grant ends; its route is withdrawn then.
	Expiry time.Time
}

// GrantRoutes keeps per-grant routes in step with grants. The grant store
// calls UpsertGrant when a grant is issued (or its expiry changes),
// RemoveGrant when it is revoked, consumed or ended, and SetGrants with all
// live grants at start and whenever it may have missed a change (only the
// difference is sent to Envoy).
type GrantRoutes interface {
	UpsertGrant(Grant) error
	RemoveGrant(id string) error
	SetGrants([]Grant) error
}

var _ GrantRoutes = (*Server)(nil)

// maxGrantID bounds a grant id (it travels in a header and a resource name).
const maxGrantID = 128

// ErrExpired is returned for a grant whose expiry has passed.
var ErrExpired = errors.New("grant has expired")

// validateID checks that id can be a header value, a scope key and part of
// a resource name: 1–128 characters of [A-Za-z0-9._:~-], and not the
// base scope's key.
func validateID(id string) error {
	if id == "" || len(id) > maxGrantID {
		return fmt.Errorf("grant id must be 1 to %d characters, got %d", maxGrantID, len(id))
	}
	if id == envoy.NoGrant {
		return fmt.Errorf("grant id %q is reserved for calls without a grant", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '~' || c == '-'
		if !ok {
			return fmt.Errorf("grant id %q: character %q at %d is not allowed (use letters, digits and . _ : ~ -)", id, c, i)
		}
	}
	return nil
}

// ScopeName is the name of a grant's ScopedRouteConfiguration (and of the
// RouteConfiguration inside it).
func ScopeName(grantID string) string { return "grant/" + grantID }

func sameGrant(a, b Grant) bool {
	return a.ID == b.ID && a.Target == b.Target && a.Tool == b.Tool && a.Expiry.Equal(b.Expiry)
}
