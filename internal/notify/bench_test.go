package notify

import (
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// BenchmarkNotify is the cost a decision (or a grant use) pays: queueing
// for a webhook that wants the event and skipping one that does not.
func BenchmarkNotify(b *testing.B) {
	w := Webhook{Name: "a", URL: "http://127.0.0.1:9/never", SecretEnv: "S", Events: []string{"grant.*"}}
	other := Webhook{Name: "b", URL: "http://127.0.0.1:9/never", SecretEnv: "S", Events: []string{"request.opened"}}
	cfg := Config{Webhooks: []Webhook{w, other}, QueueSize: 1024}
	cfg.ApplyDefaults()
	s, err := New(cfg, Options{Getenv: func(string) string { return "k" }})
	if err != nil {
		b.Fatal(err)
	}
	s.Close() // no delivery: measure queueing alone
	e := sampleEvent(grants.EventGrantUsed)
	b.ReportAllocs()
	for b.Loop() {
		s.Notify(e)
	}
}
