package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
)

const testSecret = "whsec-0123456789"

// receiver is a webhook endpoint that answers with the scripted statuses
// (then 200) and checks signatures.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	statuses []int
	got      []delivery
	block    chan struct{} // when set, each request waits for it
	srv      *httptest.Server
}

type delivery struct {
	Event, ID string
	Status    int
	SigOK     bool
	Body      []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{t: t, statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.block != nil {
		<-r.block
	}
	body, _ := io.ReadAll(req.Body)
	sigErr := Verify([]byte(testSecret), req.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute)
	r.mu.Lock()
	status := http.StatusOK
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	r.got = append(r.got, delivery{Event: req.Header.Get(EventHeader), ID: req.Header.Get(DeliveryHeader), Status: status, SigOK: sigErr == nil, Body: body})
	r.mu.Unlock()
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "30")
	}
	w.WriteHeader(status)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func webhook(url string) Webhook {
	return Webhook{Name: "test", URL: url, Format: FormatGeneric, SecretEnv: "HOOK_SECRET",
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func newSender(t *testing.T, queue int, hooks ...Webhook) *Sender {
	t.Helper()
	cfg := Config{Webhooks: hooks, QueueSize: queue}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOOK_SECRET": testSecret}
	s, err := New(cfg, Options{Getenv: func(k string) string { return env[k] }, ApprovalURL: approvalURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// eventually waits (bounded) for cond; the deliveries happen on another goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDeliveryRetries(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int
		attempts   int
		wantStatus []int
		wantSent   uint64
		wantFailed uint64
	}{
		{"first try", nil, 3, []int{200}, 1, 0},
		{"fails then succeeds", []int{500, 502}, 6, []int{500, 502, 200}, 1, 0},
		{"rate limited, Retry-After capped by max_backoff", []int{429}, 6, []int{429, 200}, 1, 0},
		{"timeout status retried", []int{408}, 6, []int{408, 200}, 1, 0},
		{"gives up after max_attempts", []int{500, 500, 500}, 3, []int{500, 500, 500}, 0, 1},
		{"a refusal is not retried", []int{400}, 6, []int{400}, 0, 1},
		{"a redirect is not followed", []int{302}, 6, []int{302}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.statuses...)
			w := webhook(rcv.srv.URL)
			w.MaxAttempts = tt.attempts
			s := newSender(t, 10, w)
			s.Notify(sampleEvent(grants.EventRequestOpened))
			eventually(t, "the event to be settled", func() bool {
				st := s.Stats()[0]
				return st.Sent+st.Failed == 1
			})
			var statuses []int
			for _, d := range rcv.deliveries() {
				statuses = append(statuses, d.Status)
				if !d.SigOK {
					t.Errorf("attempt %d: signature does not verify", len(statuses))
				}
				if d.ID != "evt_1" || d.Event != "request.opened" {
					t.Errorf("attempt %d: delivery %q event %q", len(statuses), d.ID, d.Event)
				}
			}
			if diff := cmp.Diff(tt.wantStatus, statuses); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
			st := s.Stats()[0]
			want := Stats{Webhook: "test", Sent: tt.wantSent, Failed: tt.wantFailed, Attempts: uint64(len(tt.wantStatus))}
			if diff := cmp.Diff(want, st); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	rcv := newReceiver(t)
	rcv.block = make(chan struct{})
	s := newSender(t, 3, webhook(rcv.srv.URL))
	first := sampleEvent(grants.EventRequestOpened)
	s.Notify(first)
	eventually(t, "the first event to be in flight", func() bool { return s.Stats()[0].Queued == 0 })
	// The receiver is stuck; Notify still returns at once, dropping the oldest.
	for i := 2; i <= 10; i++ {
		e := sampleEvent(grants.EventRequestOpened)
		e.ID = fmt.Sprintf("evt_%d", i)
		s.Notify(e)
	}
	if st := s.Stats()[0]; st.Queued != 3 || st.Dropped != 6 {
		t.Fatalf("queued %d dropped %d, want 3 and 6", st.Queued, st.Dropped)
	}
	close(rcv.block)
	eventually(t, "the queue to drain", func() bool { return s.Stats()[0].Sent == 4 })
	var ids []string
	for _, d := range rcv.deliveries() {
		ids = append(ids, d.ID)
	}
	if diff := cmp.Diff([]string{"evt_1", "evt_8", "evt_9", "evt_10"}, ids); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestEventFilter(t *testing.T) {
	rcv := newReceiver(t)
	w := webhook(rcv.srv.URL)
	w.Events = []string{"grant.*", "request.denied"}
	s := newSender(t, 10, w)
	for _, typ := range grants.EventTypes() {
		e := sampleEvent(typ)
		e.ID = "evt_" + string(typ)
		s.Notify(e)
	}
	want := []string{"request.denied", "grant.issued", "grant.used", "grant.consumed", "grant.expired", "grant.revoked"}
	eventually(t, "deliveries", func() bool { return s.Stats()[0].Sent == uint64(len(want)) })
	var got []string
	for _, d := range rcv.deliveries() {
		got = append(got, d.Event)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestURLNeverLogged(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/services/T000/B000/sekrit-webhook-token"
	dead.Close() // connections are refused from now on
	var logs bytes.Buffer
	cfg := Config{QueueSize: 10, Webhooks: []Webhook{{Name: "slack", URLEnv: "SLACK_URL", Format: FormatSlack,
		MaxAttempts: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Getenv: func(string) string { return url }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Notify(sampleEvent(grants.EventRequestOpened))
	eventually(t, "the event to fail", func() bool { return s.Stats()[0].Failed == 1 })
	s.Close()
	if strings.Contains(logs.String(), "sekrit") {
		t.Fatalf("the webhook URL reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "giving up") {
		t.Fatalf("the failure was not logged:\n%s", logs.String())
	}
}

func TestNewResolvesEnvironment(t *testing.T) {
	cfg := Config{QueueSize: 1, Webhooks: []Webhook{
		{Name: "a", URL: "https://hooks.example/a", SecretEnv: "MISSING_SECRET"},
		{Name: "b", URLEnv: "MISSING_URL", Format: FormatSlack},
		{Name: "c", URLEnv: "NOT_A_URL", Format: FormatSlack},
	}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg, Options{Getenv: func(k string) string {
		if k == "NOT_A_URL" {
			return "ftp:/x"
		}
		return ""
	}})
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *config.FieldError", e)
		}
		fields = append(fields, fe.Path)
	}
	if diff := cmp.Diff([]string{"notifications.webhooks[0].secret_env", "notifications.webhooks[1].url_env", "notifications.webhooks[2].url_env"}, fields); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCloseStopsRetries(t *testing.T) {
	rcv := newReceiver(t, 500, 500, 500, 500, 500, 500, 500, 500)
	w := webhook(rcv.srv.URL)
	w.Backoff, w.MaxBackoff, w.MaxAttempts = time.Hour, time.Hour, 10
	s := newSender(t, 10, w)
	s.Notify(sampleEvent(grants.EventRequestOpened))
	eventually(t, "the first attempt", func() bool { return len(rcv.deliveries()) == 1 })
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for an hour-long backoff")
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 8: 30 * time.Second} {
		for range 50 {
			d := backoff(time.Second, 30*time.Second, attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}

func TestWithService(t *testing.T) {
	// The Sender is the grants.Service's Notifier: a decision made while
	// the receiver is down is not held up, and arrives later.
	rcv := newReceiver(t, 503, 503)
	s := newSender(t, 100, webhook(rcv.srv.URL))
	gcfg := grants.Defaults()
	svc, err := grants.New(grants.NewMemStore(), gcfg, grants.Options{Notifier: s})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	r, _, err := svc.Open(ctx, grants.OpenParams{Principal: grants.Principal{Subject: "alice"}, Target: "github", Kind: grants.KindTool,
		Tool: "delete_repository", Approval: approvalTerms()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decide(ctx, r.ID, grants.Actor{Subject: "bob", Groups: []string{"sre"}}, grants.VerdictApprove, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "four events", func() bool { return s.Stats()[0].Sent == 4 })
	var types []string
	for _, d := range rcv.deliveries() {
		if d.Status == 200 {
			types = append(types, d.Event)
		}
	}
	if diff := cmp.Diff([]string{"request.opened", "request.decision", "request.approved", "grant.issued"}, types); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
