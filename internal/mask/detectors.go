package mask

// detector is one built-in detector, a bit in a Profile's set.
type detector uint32

const (
	dAWSAccessKey detector = 1 << iota
	dAWSSecretKey
	dGitHub
	dSlack
	dStripe
	dGoogle
	dOpenAI
	dAnthropic
	dHuggingFace
	dNPM
	dPyPI
	dDigitalOcean
	dSlackWebhook
	dJWT
	dPrivateKey
	dURLPassword
	dBearer
	dBasicAuth
	dAssignment
	dCard
	dEmail
	dPhone
)

// detectorInfo names a detector in configuration and in masks.
type detectorInfo struct {
	bit  detector
	name string // the detector's name in ProfileConfig.Detectors
	typ  string // the mask type it writes
	doc  string
}

// detectorTable lists every built-in detector in a fixed order.
var detectorTable = []detectorInfo{
	{dAWSAccessKey, "aws_access_key", "aws_access_key", "AWS access key ids AKIA…/ASIA… (20 characters)"},
	{dAWSSecretKey, "aws_secret_key", "aws_secret_key", "40-character AWS secret access keys named as such (AWS_SECRET_ACCESS_KEY=…, \"SecretAccessKey\": …) or near an AWS access key id"},
	{dGitHub, "github_token", "github_token", "GitHub tokens ghp_ gho_ ghu_ ghs_ ghr_ github_pat_"},
	{dSlack, "slack_token", "slack_token", "Slack tokens xoxa- xoxb- xoxp- xoxr- xoxs- xoxo- xapp-"},
	{dStripe, "stripe_key", "stripe_key", "Stripe secret and restricted keys sk_live_ sk_test_ rk_live_ rk_test_, webhook secrets whsec_"},
	{dGoogle, "google_api_key", "google_api_key", "Google API keys AIza… (39 characters)"},
	{dOpenAI, "openai_key", "openai_key", "OpenAI-style sk-… keys (sk-proj-, sk-svcacct-, …) of mixed case and digits"},
	{dAnthropic, "anthropic_key", "anthropic_key", "Anthropic keys sk-ant-…"},
	{dHuggingFace, "huggingface_token", "huggingface_token", "Hugging Face tokens hf_… (30 or more letters and digits, mixed case)"},
	{dNPM, "npm_token", "npm_token", "npm access tokens npm_ + 36 letters and digits"},
	{dPyPI, "pypi_token", "pypi_token", "PyPI API tokens pypi-AgEIcHlwaS5vcmc…"},
	{dDigitalOcean, "digitalocean_token", "digitalocean_token", "DigitalOcean tokens dop_v1_ doo_v1_ dor_v1_ + 64 hex digits"},
	{dSlackWebhook, "slack_webhook", "slack_webhook", "the secret path of Slack webhook URLs https://hooks.slack.com/services/…"},
	{dJWT, "jwt", "jwt", "JSON Web Tokens (JWS and JWE compact form) whose header decodes to JSON with \"alg\""},
	{dPrivateKey, "private_key", "private_key", "PEM private key blocks -----BEGIN … PRIVATE KEY----- … -----END …-----; of a block cut off, the header and base64 lines only"},
	{dURLPassword, "url_password", "url_password", "the password in scheme://user:password@host"},
	{dBearer, "bearer_token", "bearer_token", "the token after \"Bearer \""},
	{dBasicAuth, "basic_auth", "basic_auth", "the credentials after \"Basic \" when they decode to user:password"},
	{dAssignment, "assignment", "", "literal values assigned to a field-rule name in text: NAME=value, NAME: value, --NAME value, mysql -pSECRET (masked as field:<key>); code is left as written"},
	{dCard, "card_number", "card_number", "payment card numbers: 13–19 digits, optional space/dash groups, known network prefix, Luhn-valid"},
	{dEmail, "email", "email", "e-mail addresses"},
	{dPhone, "phone", "phone", "phone numbers: +country forms with 8–15 digits, (ddd) ddd-dddd, ddd-ddd-dddd"},
}

// maskPrefix starts every mask: "[MASKED:" + type + "]".
const maskPrefix = "[MASKED:"

// appendMask appends the mask of type typ to dst.
func appendMask(dst []byte, typ string) []byte {
	dst = append(dst, maskPrefix...)
	dst = append(dst, typ...)
	return append(dst, ']')
}

// Detector describes a built-in detector.
type Detector struct {
	Name string // as ProfileConfig.Detectors names it
	Doc  string // what it finds
}

// Detectors lists the built-in detectors in a fixed order.
func Detectors() []Detector {
	ds := make([]Detector, len(detectorTable))
	for i, d := range detectorTable {
		ds[i] = Detector{Name: d.name, Doc: d.doc}
	}
	return ds
}

// DetectorNames lists the names ProfileConfig.Detectors accepts, in a
// fixed order ("all" is accepted too and means every one of them).
func DetectorNames() []string {
	names := make([]string, len(detectorTable))
	for i, d := range detectorTable {
		names[i] = d.name
	}
	return names
}

func detectorByName(name string) (detector, bool) {
	for _, d := range detectorTable {
		if d.name == name {
			return d.bit, true
		}
	}
	return 0, false
}
