package mask

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fake credentials: vendors' documented examples or made up; none is real.
const (
	fakeAWSKeyID  = "AKIAIOSFODNN7EXAMPLE"
	fakeAWSSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	fakeGitHub    = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	fakeJWT       = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	fakeSlack     = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	fakeStripe    = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	fakeGoogle    = "AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tU_v"
	fakeOpenAI    = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	fakeAnthropic = "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	fakePEM       = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAuFakeFakeFake\nbm90IGEgcmVhbCBrZXk=\n-----END RSA PRIVATE KEY-----"
)

type textCase struct {
	name    string
	profile string // default when empty
	in      string
	want    string // == in when empty: nothing masked
	counts  Counts
}

func profileNamed(t testing.TB, name string) *Profile {
	t.Helper()
	if name == "" {
		name = DefaultProfile
	}
	p, ok := Builtin(name)
	if !ok {
		t.Fatalf("no built-in profile %q", name)
	}
	return p
}

func runTextCases(t *testing.T, cases []textCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := profileNamed(t, c.profile)
			want := c.want
			if want == "" {
				want = c.in
			}
			out, counts := p.MaskText([]byte(c.in))
			if diff := cmp.Diff(want, string(out)); diff != "" {
				t.Errorf("MaskText (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.counts, counts); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			again, c2 := p.MaskText(out)
			if string(again) != string(out) || len(c2) != 0 {
				t.Errorf("not idempotent: masking again gave %q, counts %v", again, c2)
			}
		})
	}
}

func one(typ string) Counts { return Counts{typ: 1} }

func TestDetectTokens(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "aws key id", in: "id " + fakeAWSKeyID + " end", want: "id [MASKED:aws_access_key] end", counts: one("aws_access_key")},
		{name: "aws temporary key id", in: "(ASIAY34FZKBOKMUTVV7A)", want: "([MASKED:aws_access_key])", counts: one("aws_access_key")},
		{name: "aws key id too short", in: "AKIAIOSFODNN7EXAMPL"},
		{name: "aws key id too long", in: "AKIAIOSFODNN7EXAMPLEX"},
		{name: "aws key id inside a word", in: "XAKIAIOSFODNN7EXAMPLE"},
		{name: "aws key id lower case", in: "AKIAiosfodnn7example"},
		{name: "github classic", in: "token " + fakeGitHub, want: "token [MASKED:github_token]", counts: one("github_token")},
		{name: "github server", in: "ghs_" + strings.Repeat("a1B2", 9), want: "[MASKED:github_token]", counts: one("github_token")},
		{name: "github fine-grained", in: "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab.",
			want: "[MASKED:github_token].", counts: one("github_token")},
		{name: "github too short", in: "ghp_abc123"},
		{name: "github inside a word", in: "xghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"},
		{name: "slack bot", in: "SLACK=" + fakeSlack + "\n", want: "SLACK=[MASKED:slack_token]\n", counts: one("slack_token")},
		{name: "slack app", in: "xapp-1-A0123456789-1234567890123-abcdef", want: "[MASKED:slack_token]", counts: one("slack_token")},
		{name: "slack too short", in: "xoxb-123"},
		{name: "stripe live", in: "key: " + fakeStripe, want: "key: [MASKED:stripe_key]", counts: one("stripe_key")},
		{name: "stripe restricted test", in: "rk_test_51H8abcdEFGHijkl", want: "[MASKED:stripe_key]", counts: one("stripe_key")},
		{name: "stripe webhook", in: "whsec_AbCdEfGhIjKlMnOpQrStUvWx1234", want: "[MASKED:stripe_key]", counts: one("stripe_key")},
		{name: "stripe publishable", in: "pk_live_4eC39HqLyjWDarjtT1zdp7dc"},
		{name: "google", in: `"` + fakeGoogle + `"`, want: `"[MASKED:google_api_key]"`, counts: one("google_api_key")},
		{name: "google wrong length", in: fakeGoogle + "x"},
		{name: "openai project", in: "OPENAI " + fakeOpenAI, want: "OPENAI [MASKED:openai_key]", counts: one("openai_key")},
		{name: "openai in prose", in: "install sk-learn-tutorial-for-beginners-please"},
		{name: "openai inside a word", in: "task-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"},
		{name: "anthropic", in: fakeAnthropic, want: "[MASKED:anthropic_key]", counts: one("anthropic_key")},
		{name: "jwt", in: "jwt=" + fakeJWT + ".", want: "jwt=[MASKED:jwt].", counts: one("jwt")},
		{name: "jwt unsigned", in: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", want: "[MASKED:jwt]", counts: one("jwt")},
		{name: "jwe", in: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ",
			want: "[MASKED:jwt]", counts: one("jwt")},
		{name: "jwt-like without alg", in: "eyJub3QiOiJqd3QifQ.eyJ4IjoxfQ.c2ln"},
		{name: "base64 blob of JSON", in: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9eyJzdWIiOiIxMjM0NTY3ODkwIn0"},
		{name: "private key", in: "key:\n" + fakePEM + "\nrest", want: "key:\n[MASKED:private_key]\nrest", counts: one("private_key")},
		{name: "openssh private key", in: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
			want: "[MASKED:private_key]", counts: one("private_key")},
		{name: "private key cut off", in: "x -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
			want: "x [MASKED:private_key]", counts: one("private_key")},
		{name: "certificate", in: "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"},
		{name: "public key", in: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----"},
		{name: "uuid", in: "id 123e4567-e89b-12d3-a456-426614174000"},
		{name: "git sha", in: "commit 3f786850e387550fdab836ed7e6dc881de23001b"},
		{name: "aws secret shape alone", in: "sum " + fakeAWSSecret},
	})
}

func TestDetectContext(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "aws secret env", in: "AWS_SECRET_ACCESS_KEY=" + fakeAWSSecret + "\n", want: "AWS_SECRET_ACCESS_KEY=[MASKED:aws_secret_key]\n", counts: one("aws_secret_key")},
		{name: "aws secret credentials file", in: "[default]\naws_secret_access_key = " + fakeAWSSecret, want: "[default]\naws_secret_access_key = [MASKED:aws_secret_key]", counts: one("aws_secret_key")},
		{name: "aws secret context before name", in: "aws secret: " + fakeAWSSecret, want: "aws secret: [MASKED:aws_secret_key]", counts: one("aws_secret_key")},
		{name: "aws secret shape other name", in: "checksum=" + fakeAWSSecret},
		{name: "url password", in: "postgres://app:s3cret@db:5432/x", want: "postgres://app:[MASKED:url_password]@db:5432/x", counts: one("url_password")},
		{name: "url password empty user", in: "redis://:pa55@cache:6379", want: "redis://:[MASKED:url_password]@cache:6379", counts: one("url_password")},
		{name: "url without password", in: "https://user@example.com/x"},
		{name: "url at in path", in: "https://example.com/a:b@c"},
		{name: "bearer", in: "curl -H 'Authorization: Bearer abc123def456ghi'", want: "curl -H 'Authorization: Bearer [MASKED:bearer_token]'", counts: one("bearer_token")},
		{name: "bearer jwt", in: "bearer " + fakeJWT, want: "bearer [MASKED:bearer_token]", counts: one("bearer_token")},
		{name: "bearer in prose", in: "the bearer of bad news; Bearer tokens are great"},
		{name: "basic", in: "Authorization: Basic dXNlcjpwYXNzd29yZA==", want: "Authorization: Basic [MASKED:basic_auth]", counts: one("basic_auth")},
		{name: "basic in prose", in: "Basic training starts Monday"},
		{name: "assignment env", in: "DB_PASSWORD=hunter2\nLOG_LEVEL=info", want: "DB_PASSWORD=[MASKED:field:password]\nLOG_LEVEL=info", counts: one("field:password")},
		{name: "assignment quoted", in: "password: 'p@ss w0rd' # yaml", want: "password: '[MASKED:field:password]' # yaml", counts: one("field:password")},
		{name: "assignment dotted", in: "smtp.password = x1", want: "smtp.password = [MASKED:field:password]", counts: one("field:password")},
		{name: "assignment logfmt", in: "user=bob password=hunter2 host=db", want: "user=bob password=[MASKED:field:password] host=db", counts: one("field:password")},
		{name: "assignment json as text", in: `{"user": "bob", "password": "hunter2", broken`, want: `{"user": "bob", "password": "[MASKED:field:password]", broken`, counts: one("field:password")},
		{name: "assignment escaped json as text", in: `{\"password\":\"hunter2\"`, want: `{\"password\":\"[MASKED:field:password]\"`, counts: one("field:password")},
		{name: "assignment connection string", in: "Server=db;User Id=sa;Password=Pa55;", want: "Server=db;User Id=sa;Password=[MASKED:field:password];", counts: one("field:password")},
		{name: "assignment authorization", in: "Authorization: Token abcdef", want: "Authorization: [MASKED:field:authorization]", counts: one("field:authorization")},
		{name: "assignment uses specific detector", in: "GITHUB_TOKEN=" + fakeGitHub, want: "GITHUB_TOKEN=[MASKED:github_token]", counts: one("github_token")},
		{name: "assignment yaml", in: "db:\n  password: changeme\n  user: app\n  token: abc # old\n", want: "db:\n  password: [MASKED:field:password]\n  user: app\n  token: [MASKED:field:token] # old\n",
			counts: Counts{"field:password": 1, "field:token": 1}},
		{name: "assignment yaml flow", in: "{password: changeme, user: app}", want: "{password: [MASKED:field:password], user: app}", counts: one("field:password")},
		{name: "assignment prose", in: "Args:\n  token: The GitHub token to use.\n  password: Your password, if any.\n"},
		{name: "assignment not a key", in: "passwordless=true max_tokens=4096 token_count: 5"},
		{name: "assignment comparison", in: "if token == 5 {"},
		{name: "assignment empty", in: "password=\n"},
	})
}

func TestDetectNumbers(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "visa spaced", in: "card 4111 1111 1111 1111 exp 12/30", want: "card [MASKED:card_number] exp 12/30", counts: one("card_number")},
		{name: "visa dashed", in: "4111-1111-1111-1111", want: "[MASKED:card_number]", counts: one("card_number")},
		{name: "mastercard", in: "pan=5555555555554444;", want: "pan=[MASKED:card_number];", counts: one("card_number")},
		{name: "mastercard 2-series", in: "2223003122003222", want: "[MASKED:card_number]", counts: one("card_number")},
		{name: "amex", in: "(378282246310005)", want: "([MASKED:card_number])", counts: one("card_number")},
		{name: "discover", in: "6011111111111117.", want: "[MASKED:card_number].", counts: one("card_number")},
		{name: "csv", in: "4111111111111111,5555555555554444,12/30", want: "[MASKED:card_number],[MASKED:card_number],12/30", counts: Counts{"card_number": 2}},
		{name: "luhn fails", in: "4111111111111112"},
		{name: "unknown network", in: "1234567812345670"},
		{name: "one digit repeated", in: "4444444444444444 0000000000000000"},
		{name: "too many digits", in: "4111 1111 1111 1111 2222 3333"},
		{name: "inside a word", in: "v4111111111111111 4111111111111111x"},
		{name: "decimal", in: "4111111111111111.5 3.4111111111111111"},
		{name: "timestamp", in: "ts=1700000000000000"},
		{name: "email in default", in: "mail alice@example.com"},
		{name: "email", profile: StrictProfile, in: "mail alice.b+x@mail.example.com.", want: "mail [MASKED:email].", counts: one("email")},
		{name: "not an email", profile: StrictProfile, in: "user@localhost @handle a@b.c"},
		{name: "phone plus", profile: StrictProfile, in: "call +1 (555) 123-4567 now", want: "call [MASKED:phone] now", counts: one("phone")},
		{name: "phone uk", profile: StrictProfile, in: "+44 20 7946 0958", want: "[MASKED:phone]", counts: one("phone")},
		{name: "phone paren", profile: StrictProfile, in: "(555) 123-4567", want: "[MASKED:phone]", counts: one("phone")},
		{name: "phone dashed", profile: StrictProfile, in: "555-123-4567", want: "[MASKED:phone]", counts: one("phone")},
		{name: "phone dotted", profile: StrictProfile, in: "555.123.4567", want: "[MASKED:phone]", counts: one("phone")},
		{name: "phone in default", in: "+1 (555) 123-4567"},
		{name: "not phones", profile: StrictProfile, in: "2024-01-15 10.0.0.1 +12 v1.2.3 555-1234"},
		{name: "strict keeps cards", profile: StrictProfile, in: "4111111111111111", want: "[MASKED:card_number]", counts: one("card_number")},
	})
}

func TestDetectMany(t *testing.T) {
	in := "a " + fakeAWSKeyID + " b " + fakeGitHub + " c " + fakeJWT + " d 4111111111111111 e " + fakeAWSKeyID
	want := "a [MASKED:aws_access_key] b [MASKED:github_token] c [MASKED:jwt] d [MASKED:card_number] e [MASKED:aws_access_key]"
	runTextCases(t, []textCase{{name: "many", in: in, want: want,
		counts: Counts{"aws_access_key": 2, "github_token": 1, "jwt": 1, "card_number": 1}}})
}

func TestMaskTextUnchangedIsSameSlice(t *testing.T) {
	in := []byte("nothing to see here: just prose, 42 numbers and a-dash")
	out, counts := Default().MaskText(in)
	if &out[0] != &in[0] || counts != nil {
		t.Errorf("MaskText copied or counted an unchanged text")
	}
}

func TestOffProfileMasksNothing(t *testing.T) {
	p := profileNamed(t, OffProfile)
	in := "AKIAIOSFODNN7EXAMPLE password=x 4111111111111111"
	if out, c := p.MaskText([]byte(in)); string(out) != in || c != nil {
		t.Errorf("off profile masked text: %q %v", out, c)
	}
	if !p.Off() || Default().Off() {
		t.Errorf("Off() = %v for off, %v for default", p.Off(), Default().Off())
	}
}
