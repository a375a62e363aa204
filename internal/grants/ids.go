package grants

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"strings"
)

// ID prefixes.
const (
	RequestIDPrefix = "req_"
	GrantIDPrefix   = "gr_"
	EventIDPrefix   = "evt_"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix followed by 128 random bits in lower-case base32
// (26 characters): URL-safe, unguessable, easy to type.
func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

func itoa(n int) string { return strconv.Itoa(n) }
