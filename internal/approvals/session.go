package approvals

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// session is what an inbox sign-in leaves in the browser, sealed: who the
// approver is (the ID token's issuer and subject) and the CSRF token of
// this sign-in. No OAuth token is kept.
type session struct {
	Issuer  string   `json:"iss"`
	Subject string   `json:"sub"`
	User    string   `json:"usr,omitempty"`
	Groups  []string `json:"grp,omitempty"`
	CSRF    string   `json:"csrf"`
	Expires int64    `json:"exp"` // unix seconds
}

func (s *session) viewer() viewer {
	return viewer{Issuer: s.Issuer, Subject: s.Subject, User: s.User, Groups: s.Groups}
}

// loginState is kept in a short-lived sealed cookie between the redirect
// to the provider and the callback.
type loginState struct {
	State    string `json:"st"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // PKCE code verifier
	Next     string `json:"nx"`
	Expires  int64  `json:"exp"`
}

// Cookie sizes: browsers keep at least 4096 bytes per cookie.
const maxCookieBytes = 4000

// sealer seals cookie values with AES-256-GCM; the cookie's name is the
// additional data, so one cookie's value is refused under another name.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the session key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// randomKey is a fresh 32-byte key.
func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// randomToken is 32 random bytes, base64url: states, nonces, CSRF tokens.
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomKey())
}

func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name)))
	if len(name)+len(out) > maxCookieBytes {
		return "", fmt.Errorf("the %s cookie would be %d bytes, over the %d browsers keep (too many groups in the ID token?)", name, len(out), maxCookieBytes)
	}
	return out, nil
}

var errBadCookie = errors.New("cookie is not one this server sealed")

// open unseals a value sealed under name into v.
func (s *sealer) open(name, value string, v any) error {
	if len(value) > maxCookieBytes {
		return errBadCookie
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return errBadCookie
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return errBadCookie
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errBadCookie
	}
	return nil
}

// cookieNames returns the session and login cookie names: __Host- names
// (Secure, Path=/, no Domain: bound to this origin) over https; plain
// names over http, which only a loopback development setup should use.
func cookieNames(secure bool) (sessionName, loginName string) {
	if secure {
		return "__Host-airlock_session", "__Host-airlock_login"
	}
	return "airlock_session", "airlock_login"
}

// setCookie writes a sealed cookie: HttpOnly, SameSite=Lax (the
// provider's redirect back is a top-level GET, which Lax lets through),
// Secure over https.
func (in *inbox) setCookie(w http.ResponseWriter, name string, v any, exp time.Time) error {
	val, err := in.sealer.seal(name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: val, Path: "/", Expires: exp, MaxAge: int(exp.Sub(in.h.now()).Seconds()),
		Secure: in.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

func (in *inbox) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: in.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// session returns the request's valid, unexpired session, or nil.
func (in *inbox) session(r *http.Request) *session {
	c, err := r.Cookie(in.sessionCookie)
	if err != nil {
		return nil
	}
	var s session
	// A session sealed before sessions kept the issuer has none: sign in again.
	if in.sealer.open(in.sessionCookie, c.Value, &s) != nil || s.Issuer == "" || s.Subject == "" || s.CSRF == "" {
		return nil
	}
	if in.h.now().Unix() >= s.Expires {
		return nil
	}
	return &s
}
