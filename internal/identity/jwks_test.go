package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func TestParseJWKS(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rk.Public(), KeyID: "rsa", Algorithm: "RS256", Use: "sig"},
		{Key: ek.Public(), KeyID: "ec"},
		{Key: rk, KeyID: "leaked-private"},
		{Key: []byte("shared-secret"), KeyID: "hmac"},
		{Key: ek.Public(), KeyID: "enc", Use: "enc"},
	}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	// An entry go-jose cannot read is skipped, not fatal.
	body = []byte(strings.Replace(string(body), `"keys":[`, `"keys":[{"kty":"XYZ","kid":"alien"},`, 1))

	keys, skipped, err := parseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.KeyID)
		if !k.IsPublic() {
			t.Errorf("key %s kept private material", k.KeyID)
		}
	}
	if diff := cmp.Diff([]string{"rsa", "ec", "leaked-private"}, kids); diff != "" {
		t.Errorf("kept keys (-want +got):\n%s", diff)
	}
	var why []string
	for _, s := range skipped {
		why = append(why, s[:strings.IndexByte(s, ':')])
	}
	want := []string{`keys[0]`, `keys[4] (kid "hmac")`, `keys[5] (kid "enc")`}
	if diff := cmp.Diff(want, why); diff != "" {
		t.Errorf("skipped (-want +got):\n%s\nall: %q", diff, skipped)
	}

	for body, want := range map[string]string{
		`[]`:          "not a JSON object",
		`{"keys":{}}`: "cannot unmarshal object",
		`{"keys":[]}`: "no usable signing keys (0 listed)",
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`: "no usable signing keys (1 listed)",
	} {
		if _, _, err := parseJWKS([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseJWKS(%s) = %v, want %q", body, err, want)
		}
	}
}

func TestUsableFor(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		key  jose.JSONWebKey
		alg  jose.SignatureAlgorithm
		want bool
	}{
		{jose.JSONWebKey{Key: rk.Public()}, jose.RS256, true},
		{jose.JSONWebKey{Key: rk.Public()}, jose.PS384, true},
		{jose.JSONWebKey{Key: rk.Public(), Algorithm: "RS256"}, jose.RS512, false},
		{jose.JSONWebKey{Key: rk.Public()}, jose.ES256, false},
		{jose.JSONWebKey{Key: p256.Public()}, jose.ES256, true},
		{jose.JSONWebKey{Key: p256.Public()}, jose.ES384, false},
		{jose.JSONWebKey{Key: p384.Public()}, jose.ES384, true},
		{jose.JSONWebKey{Key: p256.Public()}, jose.RS256, false},
	}
	for i, tt := range tests {
		if got := usableFor(&tt.key, tt.alg); got != tt.want {
			t.Errorf("%d: usableFor(%T, %s) = %v, want %v", i, tt.key.Key, tt.alg, got, tt.want)
		}
	}
}
