package notify

import (
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
)

func TestMatches(t *testing.T) {
	tests := []struct {
		patterns []string
		typ      grants.EventType
		want     bool
	}{
		{[]string{"*"}, grants.EventGrantUsed, true},
		{[]string{"request.*"}, grants.EventRequestOpened, true},
		{[]string{"request.*"}, grants.EventGrantIssued, false},
		{[]string{"grant.revoked"}, grants.EventGrantRevoked, true},
		{[]string{"grant.revoked"}, grants.EventGrantExpired, false},
		{DefaultEvents, grants.EventRequestJoined, false},
		{DefaultEvents, grants.EventGrantUsed, false},
		{DefaultEvents, grants.EventRequestOpened, true},
		{nil, grants.EventRequestOpened, false},
	}
	for _, tt := range tests {
		if got := matches(tt.patterns, tt.typ); got != tt.want {
			t.Errorf("matches(%v, %s) = %v", tt.patterns, tt.typ, got)
		}
	}
}
