package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func FuzzPeek(f *testing.F) {
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		"",
		"a.b.c",
		"a.b.c.d.e",
		"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3gifQ.c2ln",
		b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"iss":"https://x","exp":1}`)) + ".",
		b64([]byte(`{"alg":1}`)) + "." + b64([]byte(`{}`)) + ".",
		b64([]byte(`{"alg":"RS256","kid":null}`)) + "." + b64([]byte(`{"iss":null}`)) + ".x",
		b64([]byte(`null`)) + "." + b64([]byte(`null`)) + ".",
		b64([]byte(` {"alg":"ES256"}`)) + "." + b64([]byte(`{"iss":["a"]}`)) + ".",
		"not a jwt",
		"a..c",
		strings.Repeat("A", 100) + "." + strings.Repeat("_", 3) + ".-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := peek(raw)
		if err == nil {
			if p.alg == "" || p.iss == "" {
				t.Fatalf("peek accepted %q with alg %q iss %q", raw, p.alg, p.iss)
			}
			return
		}
		switch err.Reason {
		case ReasonMalformed:
		case ReasonInvalidClaims:
			// Only a well-formed token whose payload is an object gets here.
			seg := strings.Split(raw, ".")
			pb, derr := base64.RawURLEncoding.DecodeString(seg[1])
			if len(seg) != 3 || derr != nil || !json.Valid(pb) || !bytes.HasPrefix(bytes.TrimSpace(pb), []byte("{")) {
				t.Fatalf("peek(%q) = invalid_claims, want malformed", raw)
			}
		default:
			t.Fatalf("peek(%q): reason %s, want malformed or invalid_claims", raw, err.Reason)
		}
		if len(raw) >= 16 && strings.Contains(err.Detail, raw) {
			t.Fatalf("detail %q contains the token", err.Detail)
		}
	})
}

func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"exp":1e9,"sub":"a"}`,
		`{"exp":1.5e9,"nbf":-1,"sub":"a"}`,
		`{"exp":1e400}`,
		`{"exp":1e9,"sub":"a","scp":"a b","groups":["x",1]}`,
		`{"exp":1e9,"sub":"a","scp":["a",{}],"aud":"x","cid":null,"azp":"p"}`,
		`{"exp":1e9,"sub":"a","scope":"x","client_id":7}`,
		`{"exp":"1","iat":true}`,
	} {
		f.Add([]byte(s))
	}
	names := defaultClaimNames
	f.Fuzz(func(t *testing.T, payload []byte) {
		var claims map[string]any
		if json.Unmarshal(payload, &claims) != nil {
			return
		}
		p, times, err := principalFromClaims(claims, names)
		if err != nil {
			if err.Reason != ReasonInvalidClaims {
				t.Fatalf("reason %s, want invalid_claims", err.Reason)
			}
			return
		}
		if p.Subject == "" || times.exp.IsZero() || p.Scopes == nil || p.Groups == nil {
			t.Fatalf("accepted %s as %+v", payload, p)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	for _, s := range []string{
		`{"keys":[]}`,
		`{"keys":[{"kty":"RSA","kid":"a","n":"sXch","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"e"}]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}]}`,
		`{"keys":{}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, _, err := parseJWKS(body)
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys with an error")
			}
			return
		}
		for _, k := range keys {
			if !k.IsPublic() || !k.Valid() {
				t.Fatalf("parseJWKS kept a non-public or invalid key %q", k.KeyID)
			}
		}
	})
}
