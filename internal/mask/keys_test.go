package mask

import (
	"fmt"
	"testing"
)

// Issue 13: password-like names in common spellings were left in clear in
// JSON (DB_PASSWORD, dbPassword, PGPASSWORD, MYSQL_PWD) while the same
// names in text were masked. Names are now compared in words.
func TestKeyNamesNormalized(t *testing.T) {
	for _, c := range []struct{ name, typ string }{
		{"password", "field:password"},
		{"db_password", "field:password"},
		{"DB_PASSWORD", "field:password"},
		{"dbPassword", "field:password"},
		{"DBPassword", "field:password"},
		{"PGPASSWORD", "field:password"},
		{"MYSQL_PWD", "field:pwd"},
		{"MYSQL_ROOT_PASSWORD", "field:password"},
		{"smtp.password", "field:password"},
		{"spring.datasource.password", "field:password"},
		{"X-Api-Key", "field:x_api_key"},
		{"xApiKey", "field:x_api_key"},
		{"apiKey", "field:api_key"},
		{"APIKEY", "field:api_key"}, // api_key and apikey are the same rule: the first listed names it
		{"client-secret", "field:client_secret"},
		{"clientSecret", "field:client_secret"},
		{"clientsecret", "field:client_secret"},
		{"GITHUB_TOKEN", "field:token"},
		{"oauth2AccessToken", "field:access_token"},
		{"IDToken", "field:id_token"},
		{"Set-Cookie", "field:set_cookie"},
		{"SENTRY_DSN", "field:dsn"},
		{"ConnectionString", "field:connection_string"},
		{"gcp_credentials", "field:credentials"},
		{"ssh_pass", "field:pass"},
		{"DB_PASS", "field:pass"},
		{"redis-auth", "field:auth"},
		{"session_key", "field:session_key"},
		{"SESSION_SECRET", "field:secret"},
		{"sessionToken", "field:session_token"},
		{"--password", "field:password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, ok := Default().keys.lookup([]byte(c.name))
			if !ok || typ != c.typ {
				t.Errorf("lookup(%q) = %q, %v; want %q", c.name, typ, ok, c.typ)
			}
			in := fmt.Sprintf(`{"a":{%q:"hunter2x"}}`, c.name)
			want := fmt.Sprintf(`{"a":{%q:"[MASKED:%s]"}}`, c.name, c.typ)
			checkJSON(t, jsonCase{in: in, want: want, counts: one(c.typ)})
		})
	}
}

// Names that end like a secret name and are not secrets must stay: agents
// send pagination tokens back and read token counts.
func TestKeyNamesNotSecrets(t *testing.T) {
	for _, name := range []string{
		"next_page_token", "nextPageToken", "NextToken", "page_token", "pageToken", "continuation_token",
		"sync_token", "cursor", "max_tokens", "maxTokens", "token_count", "total_tokens", "input_tokens",
		"tokens", "token_type", "token_url", "token_endpoint", "auth_url", "authorization_endpoint",
		"password_policy", "password_reset_url", "passwordless", "bypass", "compass", "session_id", "sessionId",
		"secretName", "secret_name", "secretRef", "secretKeyRef", "eos_token", "pad_token", "PWD", "OLDPWD",
		"author", "authority", "oauth", "keyboard", "tokenizer", "passport",
		"session", "express-session", "aws_access_key", "progressToken", "PASS",
	} {
		t.Run(name, func(t *testing.T) {
			if typ, ok := Default().keys.lookup([]byte(name)); ok {
				t.Errorf("lookup(%q) = %q", name, typ)
			}
			checkJSON(t, jsonCase{in: fmt.Sprintf(`{"a":{%q:"abc123xyz"}}`, name)})
			runTextCases(t, []textCase{{name: "text", in: name + "=abc123xyz\n" + name + ": abc123xyz\n"}})
		})
	}
}

func TestExceptKeys(t *testing.T) {
	p := mustCompile(t, ProfileConfig{Name: "x", Extends: DefaultProfile,
		Keys: []string{"next_page_token"}, ExceptKeys: []string{"build_secret", "=token"}})
	for _, c := range []struct {
		name string
		want bool
	}{
		{"next_page_token", true}, // a longer rule wins over the "page_token" exception
		{"page_token", false},
		{"ci_build_secret", false},
		{"build_secret_x", false},
		{"secret", true},
		{"token", false}, // "=token": the whole name only
		{"access_token", true},
		{"MYSQL_PWD", true}, // "=pwd" in default: PWD alone is the working directory
	} {
		if _, ok := p.keys.lookup([]byte(c.name)); ok != c.want {
			t.Errorf("lookup(%q) = %v, want %v", c.name, ok, c.want)
		}
	}
	if _, err := Compile(ProfileConfig{Name: "x", ExceptKeys: []string{"=_"}}); err == nil {
		t.Errorf("an exception of separators only compiled")
	}
}

func TestNormalizeName(t *testing.T) {
	for _, c := range []struct{ in, norm, words string }{
		{"DB_PASSWORD", "dbpassword", "db password"},
		{"dbPassword", "dbpassword", "db password"},
		{"DBPassword", "dbpassword", "db password"},
		{"PGPASSWORD", "pgpassword", "pg password"},
		{"X-Api-Key", "xapikey", "x api key"},
		{"xapikey", "xapikey", "x apikey"},
		{"oauth2Token", "oauth2token", "oauth2 token"},
		{"smtp.password", "smtppassword", "smtp password"},
		{"pg", "pg", "pg"},
	} {
		var buf [maxKeyLen]byte
		n, starts, ok := normalizeName(&buf, []byte(c.in))
		if !ok || string(buf[:n]) != c.norm {
			t.Errorf("normalizeName(%q) = %q, want %q", c.in, buf[:n], c.norm)
			continue
		}
		var words string
		for b := 0; b < n; b++ {
			if b > 0 && starts&(1<<b) != 0 {
				words += " "
			}
			words += string(buf[b])
		}
		if words != c.words {
			t.Errorf("normalizeName(%q) words %q, want %q", c.in, words, c.words)
		}
	}
}
