package mask

import "testing"

// Fake tokens in the shapes gitleaks knows (random characters, made up
// for these tests; none is a credential).
const (
	fakeHF       = "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"
	fakeNPM      = "npm_qsR6RZ24lPoQj3oPUlieI2nVsbBi1RMar1jf"
	fakeDO       = "dop_v1_8ed48b7fdbda3b8e4ee5965b8be88c4f776b42dec0d174fe85d8b6b47f611ba5"
	fakePyPI     = "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZjAxLTIzNDUtNjc4OS1hYmNkLWVmMDEyMzQ1Njc4OQACJXsicGVybWlzc2lvbnMiOiAidXNlciJ9"
	fakeWebhookP = "T0FAKE123/B0FAKE4567/AbCdEfGhIjKlMnOpQrStUvWx"
)

// Issue 13, measured against gitleaks: Hugging Face, npm, PyPI and
// DigitalOcean tokens and Slack webhook URLs were not detected on their
// own (only when a key rule named them).
func TestDetectVendorTokens(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "hugging face", in: `export const hf: string = "` + fakeHF + `";`, want: `export const hf: string = "[MASKED:huggingface_token]";`, counts: one("huggingface_token")},
		{name: "hugging face in a url (a url password first)", in: "https://u:" + fakeHF + "@huggingface.co/x", want: "https://u:[MASKED:url_password]@huggingface.co/x", counts: one("url_password")},
		{name: "hugging face names", in: "from hf_hub import hf_hub_download; hf_transfer_enabled_for_all_the_models = 1"},
		{name: "hugging face one case", in: "hf_abcdefghijklmnopqrstuvwxyzabcdefgh"},
		{name: "hugging face inside a word", in: "xhf_smkYRJhokeBPMJZIScCvPfHaithAtrKMSe"},
		{name: "npm", in: "//registry.npmjs.org/:_authToken=" + fakeNPM + "\n", want: "//registry.npmjs.org/:_authToken=[MASKED:npm_token]\n", counts: one("npm_token")},
		{name: "npm alone", in: "NODE_AUTH=" + fakeNPM, want: "NODE_AUTH=[MASKED:npm_token]", counts: one("npm_token")},
		{name: "npm too short", in: fakeNPM[:len(fakeNPM)-1]},
		{name: "npm too long", in: fakeNPM + "x"},
		{name: "npm script names", in: "npm_config_cache npm_package_version npm_lifecycle_event"},
		{name: "digitalocean", in: "DO=" + fakeDO, want: "DO=[MASKED:digitalocean_token]", counts: one("digitalocean_token")},
		{name: "digitalocean oauth", in: "doo_v1_" + fakeDO[7:], want: "[MASKED:digitalocean_token]", counts: one("digitalocean_token")},
		{name: "digitalocean short", in: fakeDO[:len(fakeDO)-2]},
		{name: "pypi", in: "password = " + fakePyPI, want: "password = [MASKED:pypi_token]", counts: one("pypi_token")},
		{name: "pypi alone", in: "token " + fakePyPI + " end", want: "token [MASKED:pypi_token] end", counts: one("pypi_token")},
		{name: "pypi short", in: "pypi-AgEIcHlwaS5vcmcCJGFiY2Rl"},
		{name: "pypi word", in: "pypi-server pypi-AgEIcHlwaS5vcmc"},
		{name: "slack webhook", in: "SLACK_HOOK=https://hooks.slack.com/services/" + fakeWebhookP + "\n",
			want: "SLACK_HOOK=https://hooks.slack.com/services/[MASKED:slack_webhook]\n", counts: one("slack_webhook")},
		{name: "slack workflow webhook", in: `"https://hooks.slack.com/workflows/` + fakeWebhookP + `/1234"`,
			want: `"https://hooks.slack.com/workflows/[MASKED:slack_webhook]"`, counts: one("slack_webhook")},
		{name: "slack webhook placeholder", in: "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
		{name: "slack webhook docs page", in: "see https://hooks.slack.com/services/ and https://api.slack.com/messaging/webhooks"},
	})
	out, counts, err := Default().MaskJSON([]byte(`{"env":{"SLACK_WEBHOOK_URL":"https:\/\/hooks.slack.com\/services\/` + fakeWebhookP + `","HF":"` + fakeHF + `"}}`))
	if want := `{"env":{"SLACK_WEBHOOK_URL":"https://hooks.slack.com/services/[MASKED:slack_webhook]","HF":"[MASKED:huggingface_token]"}}`; err != nil || string(out) != want {
		t.Errorf("in JSON: %s (%v), want %s", out, err, want)
	}
	if len(counts) != 2 {
		t.Errorf("counts %v", counts)
	}
}

// curl's -u user:password (gitleaks' curl-auth-user) was not masked: the
// password is now, the user stays.
func TestCurlUser(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "quoted", in: `curl -u "deploy:CHPxCUJgnoKgDqY9SpxW" https://x.test/upload`, want: `curl -u "deploy:[MASKED:field:password]" https://x.test/upload`, counts: one("field:password")},
		{name: "unquoted", in: `curl -fsS -u admin:s3cr3t-pass https://x.test`, want: `curl -fsS -u admin:[MASKED:field:password] https://x.test`, counts: one("field:password")},
		{name: "attached", in: `curl -uadmin:s3cr3tpass https://x.test`, want: `curl -uadmin:[MASKED:field:password] https://x.test`, counts: one("field:password")},
		{name: "long option", in: `curl --user 'ci:p@ss w0rd' https://x.test`, want: `curl --user 'ci:[MASKED:field:password]' https://x.test`, counts: one("field:password")},
		{name: "long option equals", in: `curl --user=ci:hunter22 https://x.test`, want: `curl --user=ci:[MASKED:field:password] https://x.test`, counts: one("field:password")},
		{name: "continued line", in: "curl -sS \\\n  -u ci:hunter22 \\\n  https://x.test", want: "curl -sS \\\n  -u ci:[MASKED:field:password] \\\n  https://x.test", counts: one("field:password")},
		{name: "escaped json", in: `{"cmd":"curl -u \"ci:hunter22\" https://x.test"`, want: `{"cmd":"curl -u \"ci:[MASKED:field:password]\" https://x.test"`, counts: one("field:password")},
		{name: "user only", in: `curl -u deploy https://x.test; curl -u "deploy:" https://x.test`},
		{name: "variables", in: `curl -u "$USER:$PASS" https://x.test; curl -u ci:${CI_TOKEN} x; curl --user "$CREDS" x`},
		{name: "placeholder", in: `curl -u USER:PASSWORD https://x.test`},
		{name: "not curl", in: `git log -u a:b; sort -u x:y`},
		{name: "next line is not curl", in: "curl https://x.test\nssh -u a:bcdefgh host"},
	})
}

// Version and number words after the key word do not end the name:
// ses_smtp_password_v4 (Terraform's aws_iam_access_key), password2,
// token_v2 are masked; exceptions still hold with a version.
func TestKeyVersionSuffix(t *testing.T) {
	p := Default()
	for name, want := range map[string]string{
		"ses_smtp_password_v4": "field:password", "password2": "field:password", "token_v2": "field:token",
		"DB_PASSWORD_2": "field:password", "apiKeyV3": "field:api_key", "password_1_2": "field:password",
		"client_secret_v10": "field:client_secret",
		"next_token_v2":     "", "page_token_2": "", "max_tokens_2": "", "sha256": "", "v2": "", "2": "",
		"token_count_2": "", "passwordless2": "", "auth0_domain": "", "auth0": "", "auth0_token": "field:token", "cvv2": "field:cvv",
	} {
		got, _ := p.keys.lookup([]byte(name))
		if got != want {
			t.Errorf("lookup(%q) = %q, want %q", name, got, want)
		}
	}
	custom := mustCompile(t, ProfileConfig{Name: "c", Extends: DefaultProfile, ExceptKeys: []string{"legacy_token_v1"}})
	if got, _ := custom.keys.lookup([]byte("legacy_token_v1")); got != "" {
		t.Errorf("an exception with a version word: %q", got)
	}
	if got, _ := custom.keys.lookup([]byte("legacy_token_v2")); got != "field:token" {
		t.Errorf("another version of an excepted name: %q", got)
	}
	out, _, err := p.MaskJSON([]byte(`{"ses_smtp_password_v4":"BEt3Lq8Zx2Vn6Kp9Rw4Ym7","password2":"hunter22","tokens_v2":5}`))
	if want := `{"ses_smtp_password_v4":"[MASKED:field:password]","password2":"[MASKED:field:password]","tokens_v2":5}`; err != nil || string(out) != want {
		t.Errorf("got %s (%v), want %s", out, err, want)
	}
}

// A typed declaration names its variable before the type: the value of
// token: string = "…" is the token's.
func TestTypedDeclaration(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "typescript", in: `export const apiToken: string = "a1b2c3d4e5f6";`, want: `export const apiToken: string = "[MASKED:field:token]";`, counts: one("field:token")},
		{name: "python", in: `DB_PASSWORD: str = "hunter22"`, want: `DB_PASSWORD: str = "[MASKED:field:password]"`, counts: one("field:password")},
		{name: "go", in: `var secret string = "s3cr3t-value"`, want: `var secret string = "[MASKED:field:secret]"`, counts: one("field:secret")},
		{name: "code stays", in: `const token: string = req.headers.authorization; let password: string = getPassword();`},
		{name: "not a secret name", in: `const title: string = "hello world";`},
	})
}
