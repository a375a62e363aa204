package notify

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// The Standard Webhooks specification's published test vector (the same
// as the reference libraries' TestWebhookSign).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignStandardVector(t *testing.T) {
	key, err := StandardKey(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := SignStandard(key, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload)); got != vectorSignature {
		t.Fatalf("signature %s, want the specification's %s", got, vectorSignature)
	}
	// The reference library agrees with the vector and with us.
	wh, err := standardwebhooks.NewWebhook(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(StandardIDHeader, vectorID)
	h.Set(StandardTimestampHeader, "1614265330")
	h.Set(StandardSignatureHeader, vectorSignature)
	if err := wh.VerifyIgnoringTimestamp([]byte(vectorPayload), h); err != nil {
		t.Fatalf("reference library: %v", err)
	}
}

func TestStandardKey(t *testing.T) {
	tests := []struct {
		name, secret string
		want         string
		wantErr      error
	}{
		{"whsec is decoded", "whsec_aGVsbG8=", "hello", nil},
		{"other secrets are raw bytes", "whsec-0123456789", "whsec-0123456789", nil},
		{"no prefix, base64-looking", "aGVsbG8=", "aGVsbG8=", nil},
		{"whsec with nothing after", "whsec_", "", ErrBadStandardSecret},
		{"whsec not base64", "whsec_not base64!", "", ErrBadStandardSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StandardKey(tt.secret)
			if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
				t.Fatalf("StandardKey(%q) = %q, %v; want %q, %v", tt.secret, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzStandardKey(f *testing.F) {
	for _, s := range []string{vectorSecret, "whsec_", "whsec_====", "plain", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		key, err := StandardKey(secret)
		if err != nil {
			if !strings.HasPrefix(secret, StandardSecretPrefix) {
				t.Fatalf("a secret without the prefix was refused: %v", err)
			}
			return
		}
		if len(secret) > 0 && len(key) == 0 {
			t.Fatal("an empty key from a non-empty secret")
		}
		// Whatever the key, a signature has the v1,<base64 SHA-256> shape.
		sig := SignStandard(key, "evt_1", time.Unix(1, 0), []byte("{}"))
		if !strings.HasPrefix(sig, "v1,") || len(sig) != 3+44 {
			t.Fatalf("signature %q", sig)
		}
	})
}

// TestDeliveriesVerifyWithReferenceLibrary sends real deliveries to a real
// HTTP receiver that verifies them with the Standard Webhooks reference
// library (whsec_ secret through NewWebhook, any other through
// NewWebhookRaw), and checks the deprecated header is still there and
// still verifies, and the id is the event id on every retry.
func TestDeliveriesVerifyWithReferenceLibrary(t *testing.T) {
	tests := []struct {
		name     string
		secret   string
		verifier func(string) (*standardwebhooks.Webhook, error)
		statuses []int // the receiver's answers before 200
	}{
		{"whsec secret", vectorSecret, standardwebhooks.NewWebhook, nil},
		{"raw secret", "whsec-0123456789", func(s string) (*standardwebhooks.Webhook, error) { return standardwebhooks.NewWebhookRaw([]byte(s)) }, nil},
		{"retried delivery keeps its id", vectorSecret, standardwebhooks.NewWebhook, []int{503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, err := tt.verifier(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			type got struct {
				id, legacy string
				verr, lerr error
			}
			var mu sync.Mutex
			var gots []got
			statuses := tt.statuses
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				g := got{id: r.Header.Get(StandardIDHeader), legacy: r.Header.Get(SignatureHeader)}
				g.verr = wh.Verify(body, r.Header)
				g.lerr = Verify([]byte(tt.secret), g.legacy, body, time.Now(), 5*time.Minute)
				mu.Lock()
				gots = append(gots, g)
				status := http.StatusOK
				if len(statuses) > 0 {
					status, statuses = statuses[0], statuses[1:]
				}
				mu.Unlock()
				w.WriteHeader(status)
			}))
			t.Cleanup(srv.Close)
			cfg := Config{Webhooks: []Webhook{webhook(srv.URL)}, QueueSize: 10}
			cfg.ApplyDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			s, err := New(cfg, Options{Getenv: func(string) string { return tt.secret }, ApprovalURL: approvalURL})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			s.Notify(sampleEvent(grants.EventRequestOpened))
			eventually(t, "the delivery", func() bool { return s.Stats()[0].Sent == 1 })
			mu.Lock()
			defer mu.Unlock()
			if len(gots) != len(tt.statuses)+1 {
				t.Fatalf("%d attempts, want %d", len(gots), len(tt.statuses)+1)
			}
			for i, g := range gots {
				if g.verr != nil {
					t.Errorf("attempt %d: the reference library refused the signature: %v", i, g.verr)
				}
				if g.id != "evt_1" {
					t.Errorf("attempt %d: webhook-id %q, want the event id", i, g.id)
				}
				if g.legacy == "" || g.lerr != nil {
					t.Errorf("attempt %d: deprecated %s %q: %v", i, SignatureHeader, g.legacy, g.lerr)
				}
			}
		})
	}
}

func TestBadStandardSecretRefusedAtStart(t *testing.T) {
	cfg := Config{Webhooks: []Webhook{webhook("https://hooks.example/a")}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return "whsec_%%%" }
	if _, err := New(cfg, Options{Getenv: getenv}); err == nil || !strings.Contains(err.Error(), "secret_env") {
		t.Fatalf("New: %v, want a secret_env error", err)
	}
	if err := CheckEnvironment(cfg, getenv); err == nil {
		t.Fatal("CheckEnvironment passed a bad whsec_ secret")
	}
	if strings.Contains(func() string { _, err := New(cfg, Options{Getenv: getenv}); return err.Error() }(), "%%%") {
		t.Fatal("the error quotes the secret")
	}
}
