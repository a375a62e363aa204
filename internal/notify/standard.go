package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com, spec v1) headers,
// set on every delivery of a webhook with a secret, so receivers can
// verify with an off-the-shelf library.
const (
	// StandardIDHeader is the message id: the event id, the same on every
	// retry (receivers drop duplicates with it).
	StandardIDHeader = "webhook-id"
	// StandardTimestampHeader is the attempt's time in Unix seconds.
	StandardTimestampHeader = "webhook-timestamp"
	// StandardSignatureHeader is "v1,<base64 HMAC-SHA256>" of
	// "<id>.<timestamp>.<raw body>", keyed with the webhook's secret (see
	// StandardKey).
	StandardSignatureHeader = "webhook-signature"
)

// StandardSecretPrefix marks a secret in the Standard Webhooks form:
// "whsec_" then the key in base64.
const StandardSecretPrefix = "whsec_"

// ErrBadStandardSecret is a secret_env value that starts with "whsec_" but
// whose remainder is not a base64 key.
var ErrBadStandardSecret = errors.New(`a secret starting with "whsec_" must be followed by a base64 key`)

// StandardKey is the HMAC key of the Standard Webhooks signature for a
// configured secret: a "whsec_<base64>" secret (what Standard Webhooks
// libraries take, and what airlock documents) is the decoded key; any
// other secret is its bytes as they are (a receiver then uses the raw-key
// constructor of its library, e.g. NewWebhookRaw in Go).
func StandardKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, StandardSecretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) == 0 {
		return nil, ErrBadStandardSecret
	}
	return key, nil
}

// SignStandard returns the StandardSignatureHeader value for message id,
// sent at t with body: "v1," and the base64 HMAC-SHA256, keyed with key
// (StandardKey), of id, a dot, the Unix seconds of t, a dot and the body.
func SignStandard(key []byte, id string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, t.Unix(), 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
