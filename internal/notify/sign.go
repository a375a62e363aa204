package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers airlock sets on every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>": the
	// MAC, keyed with the webhook's secret, of the timestamp, a dot, and the
	// raw body. A receiver recomputes it, compares in constant time, and
	// refuses timestamps too far from its clock (replays).
	//
	// Deprecated: airlock's own scheme, sent beside the Standard Webhooks
	// headers (StandardSignatureHeader) for one more release; verify
	// those instead.
	SignatureHeader = "X-Airlock-Signature"
	// EventHeader is the event type (request.opened, …).
	EventHeader = "X-Airlock-Event"
	// DeliveryHeader is the event id, the same on every retry: receivers
	// drop duplicates with it.
	DeliveryHeader = "X-Airlock-Delivery"
)

// Sign returns the SignatureHeader value for body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrBadSignatureHeader = errors.New("malformed signature header")
	ErrSignatureMismatch  = errors.New("signature does not match")
	ErrSignatureTooOld    = errors.New("signature timestamp outside the tolerance")
)

// Verify checks a SignatureHeader value against body, as a receiver does:
// the timestamp must be within tolerance of now, and one of the v1 MACs
// (several are allowed, for key rotation) must match.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q has no '='", ErrBadSignatureHeader, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrBadSignatureHeader)
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256 MAC", ErrBadSignatureHeader)
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=… and v1=…", ErrBadSignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not an integer", ErrBadSignatureHeader, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s from now", ErrSignatureTooOld, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
