package audit

import (
	"testing"
	"time"
)

func TestRetentionCutoff(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		days int
		want uint32
	}{
		{1, 20260228},
		{30, 20260130},
		{365, 20250301},
	}
	for _, tt := range tests {
		if got := RetentionCutoff(now, tt.days); got != tt.want {
			t.Errorf("RetentionCutoff(%d) = %d, want %d", tt.days, got, tt.want)
		}
	}
}
