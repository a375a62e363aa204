package grants

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
)

func TestNewRejectsBadConfig(t *testing.T) {
	c := Defaults()
	c.HoldWindow = time.Hour
	if _, err := New(NewMemStore(), c, Options{}); err == nil {
		t.Fatal("New accepted an invalid configuration")
	}
	if _, err := New(nil, Defaults(), Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New without a store: %v", err)
	}
}

// TestEventTypesMatchConfig: configuration checks webhook event patterns
// against its own list of names (it imports no domain package); the two
// lists must be the same.
func TestEventTypesMatchConfig(t *testing.T) {
	var names []string
	for _, e := range EventTypes() {
		names = append(names, string(e))
	}
	if want := config.EventTypeNames(); !slices.Equal(names, want) {
		t.Fatalf("grants.EventTypes() = %v, config.EventTypeNames() = %v", names, want)
	}
}
