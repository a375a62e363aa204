package notify

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("whsec-test-key")
	body := []byte(`{"id":"evt_1"}`)
	at := time.Unix(1_770_000_000, 0)
	good := Sign(secret, at, body)
	if !strings.HasPrefix(good, "t=1770000000,v1=") {
		t.Fatalf("header %q", good)
	}
	_, mac, _ := strings.Cut(good, ",")
	tests := []struct {
		name    string
		secret  []byte
		header  string
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"good", secret, good, body, at, nil},
		{"good within tolerance", secret, good, body, at.Add(4 * time.Minute), nil},
		{"rotated keys: one of two matches", secret, "t=1770000000,v1=" + strings.Repeat("00", 32) + "," + mac, body, at, nil},
		{"wrong secret", []byte("other"), good, body, at, ErrSignatureMismatch},
		{"tampered body", secret, good, []byte(`{"id":"evt_2"}`), at, ErrSignatureMismatch},
		{"timestamp changed", secret, strings.Replace(good, "t=1770000000", "t=1770000001", 1), body, at, ErrSignatureMismatch},
		{"too old", secret, good, body, at.Add(6 * time.Minute), ErrSignatureTooOld},
		{"from the future", secret, good, body, at.Add(-6 * time.Minute), ErrSignatureTooOld},
		{"no timestamp", secret, mac, body, at, ErrBadSignatureHeader},
		{"no mac", secret, "t=1770000000", body, at, ErrBadSignatureHeader},
		{"two timestamps", secret, "t=1,t=2," + mac, body, at, ErrBadSignatureHeader},
		{"mac not hex", secret, "t=1770000000,v1=zz", body, at, ErrBadSignatureHeader},
		{"mac too short", secret, "t=1770000000,v1=abcd", body, at, ErrBadSignatureHeader},
		{"timestamp not a number", secret, "t=soon," + mac, body, at, ErrBadSignatureHeader},
		{"part without =", secret, "t=1770000000,junk," + mac, body, at, ErrBadSignatureHeader},
		{"empty", secret, "", body, at, ErrBadSignatureHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("k")
	body := []byte("{}")
	f.Add(Sign(secret, time.Unix(100, 0), body), body)
	f.Add("t=100,v1=", body)
	f.Add("t=-9223372036854775808,v1="+strings.Repeat("ab", 32), []byte{})
	f.Add(",,,=,t=", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := Verify(secret, header, b, time.Unix(100, 0), time.Minute)
		if err == nil {
			// Only a header this package signed for this body verifies.
			if Sign(secret, time.Unix(100, 0), b) != header && !strings.Contains(header, Sign(secret, time.Unix(100, 0), b)[len("t=100,"):]) {
				t.Fatalf("verified a header it did not sign: %q", header)
			}
			return
		}
		if !errors.Is(err, ErrBadSignatureHeader) && !errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrSignatureTooOld) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
