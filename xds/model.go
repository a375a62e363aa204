package xds

import "github.com/airlock-mcp/airlock/envoy"

// Grant is a live just-in-time grant as far as routing is concerned;
// package envoy renders its scope.
type Grant = envoy.Grant

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

func sameGrant(a, b Grant) bool {
	return a.ID == b.ID && a.Target == b.Target && a.Tool == b.Tool && a.Expiry.Equal(b.Expiry)
}
