package mask

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// Detectors for tokens with a known shape: a vendor prefix, a length and a
// character set. Each is anchored on one trigger byte and checks the
// bytes around it; none allocates.

// fireA: AWS access key ids (AKIA/ASIA + 16 of [A-Z0-9]) and Google API
// keys (AIza + 35 of [A-Za-z0-9_-]).
func (p *Profile) fireA(s []byte, i, floor int, ms []match) ([]match, int) {
	if !startOK(s, i, floor) || i+4 > len(s) {
		return ms, i + 1
	}
	switch s[i+1] {
	case 'K', 'S':
		if !p.on(dAWSAccessKey) || s[i+2] != 'I' || s[i+3] != 'A' || i+20 > len(s) {
			break
		}
		for _, c := range s[i+4 : i+20] {
			if class[c]&(cUpper|cDigit) == 0 {
				return ms, i + 1
			}
		}
		if endOK(s, i+20, cWord) {
			return append(ms, match{i, i + 20, "aws_access_key"}), i + 20
		}
	case 'I':
		if !p.on(dGoogle) || s[i+2] != 'z' || s[i+3] != 'a' {
			break
		}
		e := runMax(s, i+4, cB64URL, 36)
		if e-i == 39 {
			return append(ms, match{i, e, "google_api_key"}), e
		}
	}
	return ms, i + 1
}

// fireUnder: GitHub tokens gh[pousr]_ + 30+ alphanumerics and
// github_pat_ + 22+ of [A-Za-z0-9_]; Stripe [sr]k_(live|test)_ + 10+
// alphanumerics and whsec_ + 24+; Hugging Face hf_ + 30+ alphanumerics
// of mixed case; npm_ + 36 alphanumerics; DigitalOcean do[opr]_v1_ + 64
// hex digits.
func (p *Profile) fireUnder(s []byte, i, floor int, ms []match) ([]match, int) {
	alnum := uint8(cUpper | cLower | cDigit)
	if p.on(dGitHub) {
		if i >= 3 && s[i-3] == 'g' && s[i-2] == 'h' && strings.IndexByte("pousr", s[i-1]) >= 0 && startOK(s, i-3, floor) {
			e := run(s, i+1, alnum)
			if e-(i+1) >= 30 && endOK(s, e, cWord) {
				return append(ms, match{i - 3, e, "github_token"}), e
			}
		}
		if i >= 6 && string(s[i-6:i]) == "github" && hasPrefix(s, i+1, "pat_") && startOK(s, i-6, floor) {
			e := run(s, i+5, cWord)
			if e-(i+5) >= 22 {
				return append(ms, match{i - 6, e, "github_token"}), e
			}
		}
	}
	if p.on(dStripe) {
		if i >= 2 && (s[i-2] == 's' || s[i-2] == 'r') && s[i-1] == 'k' &&
			(hasPrefix(s, i+1, "live_") || hasPrefix(s, i+1, "test_")) && startOK(s, i-2, floor) {
			e := run(s, i+6, alnum)
			if e-(i+6) >= 10 && endOK(s, e, cWord) {
				return append(ms, match{i - 2, e, "stripe_key"}), e
			}
		}
		if i >= 5 && string(s[i-5:i]) == "whsec" && startOK(s, i-5, floor) {
			e := run(s, i+1, alnum)
			if e-(i+1) >= 24 && endOK(s, e, cWord) {
				return append(ms, match{i - 5, e, "stripe_key"}), e
			}
		}
	}
	if p.on(dHuggingFace) && i >= 2 && s[i-2] == 'h' && s[i-1] == 'f' && startOK(s, i-2, floor) {
		e := run(s, i+1, alnum)
		if e-(i+1) >= 30 && endOK(s, e, cWord) && bothCases(s[i+1:e]) {
			return append(ms, match{i - 2, e, "huggingface_token"}), e
		}
	}
	if p.on(dNPM) && i >= 3 && string(s[i-3:i]) == "npm" && startOK(s, i-3, floor) {
		e := run(s, i+1, alnum)
		if e-(i+1) == 36 && endOK(s, e, cWord) {
			return append(ms, match{i - 3, e, "npm_token"}), e
		}
	}
	if p.on(dDigitalOcean) && i >= 3 && s[i-3] == 'd' && s[i-2] == 'o' && strings.IndexByte("opr", s[i-1]) >= 0 &&
		hasPrefix(s, i+1, "v1_") && startOK(s, i-3, floor) {
		e := i + 4
		for e < len(s) && ('0' <= s[e] && s[e] <= '9' || 'a' <= s[e] && s[e] <= 'f') {
			e++
		}
		if e-(i+4) == 64 && endOK(s, e, cWord) {
			return append(ms, match{i - 3, e, "digitalocean_token"}), e
		}
	}
	return ms, i + 1
}

// bothCases reports whether b has an upper-case and a lower-case letter:
// random tokens do, identifiers in snake or kebab case do not.
func bothCases(b []byte) bool {
	var k uint8
	for _, c := range b {
		k |= class[c]
	}
	return k&(cUpper|cLower) == cUpper|cLower
}

// pypiPrefix is how every PyPI API token goes on after "pypi-": the
// base64 of its macaroon's location, "pypi.org".
const pypiPrefix = "AgEIcHlwaS5vcmc"

// slackWebhook masks the secret path of a Slack webhook URL,
// http(s)://hooks.slack.com/{services,workflows,triggers}/<path>; i is the
// ':' of "://". The path (team, bot or workflow ids and the secret) is
// masked whole, the scheme, host and kind stay; a path that is too short,
// or not of mixed case and digits (T00000000/B00000000/XXXX… in docs), is
// left.
func (p *Profile) slackWebhook(s []byte, i, floor int, ms []match) ([]match, int, bool) {
	if !(hasPrefix(s, i-4, "http") || hasPrefix(s, i-5, "https")) || !hasPrefix(s, i+3, "hooks.slack.com/") {
		return ms, 0, false
	}
	j := i + 3 + len("hooks.slack.com/")
	var k int
	for _, kind := range []string{"services/", "workflows/", "triggers/"} {
		if hasPrefix(s, j, kind) {
			k = j + len(kind)
			break
		}
	}
	if k == 0 || k < floor {
		return ms, 0, false
	}
	e := run(s, k, cB64Std|cB64URL)
	if e-k < 30 || bytes.IndexByte(s[k:e], '/') < 0 || !mixed(s[k:e]) {
		return ms, 0, false
	}
	return append(ms, match{k, e, "slack_webhook"}), e, true
}

// fireDash: PEM private key blocks, PyPI tokens pypi-AgEIcHlwaS5vcmc…
// (50+ of [A-Za-z0-9_-] after the prefix), Slack tokens xox[abposr]- and
// xapp- (10+ of [A-Za-z0-9-] after the prefix), sk-ant- and sk- keys.
func (p *Profile) fireDash(s []byte, i, floor int, ms []match) ([]match, int) {
	if p.on(dPrivateKey) && hasPrefix(s, i, "-----BEGIN ") && i >= floor {
		return pemBlock(s, i, ms)
	}
	if p.on(dAssignment) && !p.keys.empty() && i+2 < len(s) && (s[i+1] == '-' || s[i+1] == 'p' || s[i+1] == 'u') {
		if m, ok := p.fireOption(s, i, floor); ok {
			return p.valueMatch(s, m.s, m.e, m.typ, ms), m.e
		}
	}
	if p.on(dPyPI) && i >= 4 && string(s[i-4:i]) == "pypi" && startOK(s, i-4, floor) && hasPrefix(s, i+1, pypiPrefix) {
		e := run(s, i+1+len(pypiPrefix), cB64URL)
		if e-(i+1+len(pypiPrefix)) >= 50 {
			return append(ms, match{i - 4, e, "pypi_token"}), e
		}
	}
	if p.on(dSlack) && i >= 4 && startOK(s, i-4, floor) &&
		((string(s[i-4:i-1]) == "xox" && strings.IndexByte("abposr", s[i-1]) >= 0) || string(s[i-4:i]) == "xapp") {
		e := run(s, i+1, cUpper|cLower|cDigit|cB64URL)
		if e-(i+1) >= 10 {
			return append(ms, match{i - 4, e, "slack_token"}), e
		}
	}
	if i >= 2 && s[i-2] == 's' && s[i-1] == 'k' && startOK(s, i-2, floor) && p.on(dAnthropic|dOpenAI) {
		e := run(s, i+1, cB64URL)
		if p.on(dAnthropic) && hasPrefix(s, i+1, "ant-") && e-(i+5) >= 20 {
			return append(ms, match{i - 2, e, "anthropic_key"}), e
		}
		if p.on(dOpenAI) && e-(i+1) >= 20 && mixed(s[i+1:e]) {
			return append(ms, match{i - 2, e, "openai_key"}), e
		}
		// A key starting later in this run would be a part of this one,
		// as short or as unmixed: skip the run.
		return ms, e
	}
	return ms, i + 1
}

// mixed reports whether b has a digit, an upper-case and a lower-case
// letter: random keys do, words in prose ("sk-learn-tutorial") do not.
func mixed(b []byte) bool {
	var k uint8
	for _, c := range b {
		k |= class[c]
	}
	return k&(cDigit|cUpper|cLower) == cDigit|cUpper|cLower
}

// pemBlock masks -----BEGIN <label>PRIVATE KEY[ BLOCK]----- through the
// matching -----END …----- line when only base64 (in lines, or separated
// by spaces when the block was flattened onto one line) and the
// Proc-Type/DEK-Info headers of an encrypted key come between. Otherwise
// the block is cut off or is not one: the header line and the lines of
// base64 right after it are masked, and nothing further — a mask must
// never hide what follows (an agent put a shell payload after a bare
// BEGIN line to hide it from the approver).
func pemBlock(s []byte, i int, ms []match) ([]match, int) {
	j := i + len("-----BEGIN ")
	k := bytes.Index(s[j:min(len(s), j+64)], []byte("-----"))
	if k < 0 {
		return ms, j
	}
	label := s[j : j+k]
	if !bytes.HasSuffix(label, []byte("PRIVATE KEY")) && !bytes.HasSuffix(label, []byte("PRIVATE KEY BLOCK")) {
		return ms, j
	}
	body := j + k + 5
	end, ok := pemEnd(s, body)
	if !ok {
		end = pemLines(s, body)
	}
	return append(ms, match{i, end, "private_key"}), end
}

// pemSep returns the length of the line break at s[i:] — "\n", "\r\n",
// "\r", or the same escaped ("\\n") in text holding JSON — or 0.
func pemSep(s []byte, i int) int {
	for _, sep := range pemSeps {
		if hasPrefix(s, i, sep) {
			return len(sep)
		}
	}
	return 0
}

var pemSeps = []string{"\r\n", "\n", "\r", `\r\n`, `\n`, `\r`}

// pemHeader returns the end of a Proc-Type or DEK-Info header line at
// s[i:], or -1.
func pemHeader(s []byte, i int) int {
	if !hasPrefix(s, i, "Proc-Type:") && !hasPrefix(s, i, "DEK-Info:") {
		return -1
	}
	for i < len(s) && pemSep(s, i) == 0 {
		i++
	}
	return i
}

// pemQuote reports whether a quote that may end the string holding the
// key is at s[i:] (text holding JSON: "…\nbm90IGE", …).
func pemQuote(s []byte, i int) bool {
	return s[i] == '"' || s[i] == '\'' || s[i] == '`' || hasPrefix(s, i, `\"`)
}

// pemEnd returns the end of the -----END …----- line closing a block
// whose body starts at i, when only base64, blanks and headers come
// before it.
func pemEnd(s []byte, i int) (int, bool) {
	for i < len(s) {
		if n := pemSep(s, i); n > 0 {
			i += n
			continue
		}
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if hasPrefix(s, i, "-----END ") {
			e := i + len("-----END ")
			if t := bytes.Index(s[e:min(len(s), e+80)], []byte("-----")); t >= 0 {
				return e + t + 5, true
			}
			return 0, false
		}
		if h := pemHeader(s, i); h >= 0 {
			i = h
			continue
		}
		e := run(s, i, cB64Std)
		for e < len(s) && s[e] == '=' {
			e++
		}
		if e == i {
			return 0, false
		}
		i = e
	}
	return 0, false
}

// pemLines returns the end of the lines of base64 (and the headers of an
// encrypted key) following the header line that ends at i: the extent of
// a block that is cut off.
func pemLines(s []byte, i int) int {
	end := i
	headers := false
	for {
		n := pemSep(s, end)
		if n == 0 {
			return end
		}
		l := end + n
		if h := pemHeader(s, l); h >= 0 {
			end, headers = h, true
			continue
		}
		if headers && pemSep(s, l) > 0 {
			end, headers = l, false // the blank line after the headers
			continue
		}
		e := run(s, l, cB64Std)
		for e < len(s) && s[e] == '=' {
			e++
		}
		if e == l || (e < len(s) && pemSep(s, e) == 0 && !pemQuote(s, e)) {
			return end // not a line of base64 only
		}
		end = e
	}
}

// fireJ: JSON Web Tokens. The trigger is the 'J' of "eyJ" (base64url of
// `{"`); the token is 3 (JWS) or 5 (JWE) dot-separated base64url parts
// whose first decodes to a JSON object with an "alg" member.
func (p *Profile) fireJ(s []byte, i, floor int, ms []match) ([]match, int) {
	start := i - 2
	if start < 0 || s[start] != 'e' || s[start+1] != 'y' || !startOK(s, start, floor) {
		return ms, i + 1
	}
	var ends [5]int
	np, j := 0, start
	for {
		var k int
		if np == 0 {
			k = runMax(s, j, cB64URL, maxJWTHeader+1)
		} else {
			k = run(s, j, cB64URL)
		}
		ends[np] = k
		np++
		// The signature may be empty (alg "none"); a 4th and 5th part
		// follow only as more base64url.
		if np < 5 && k < len(s) && s[k] == '.' && (np < 3 || (k+1 < len(s) && is(s[k+1], cB64URL))) {
			j = k + 1
			continue
		}
		break
	}
	if np == 4 {
		np = 3 // a JWS followed by ".something": mask the JWS
	}
	// On failure, skip what was looked at: the first part (a token
	// starting after a '-' inside it is not worth quadratic time), or
	// all parts when there were too few dots (a token starting inside
	// them would have too few as well).
	if np < 3 {
		return ms, ends[np-1]
	}
	if ends[0]-start < 16 || ends[0]-start > maxJWTHeader || !jwtHeader(s[start:ends[0]]) {
		return ms, ends[0]
	}
	e := ends[np-1]
	return append(ms, match{start, e, "jwt"}), e
}

// maxJWTHeader bounds the encoded header of a JWT (one with an x5c
// certificate chain can be long).
const maxJWTHeader = 2048

// jwtHeader reports whether h, base64url without padding, decodes to a
// JSON object with an "alg" member.
func jwtHeader(h []byte) bool {
	var buf [maxJWTHeader * 3 / 4]byte
	if base64.RawURLEncoding.DecodedLen(len(h)) > len(buf) {
		return false
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], h)
	if err != nil {
		return false
	}
	d := bytes.TrimSpace(buf[:n])
	return len(d) > 0 && d[0] == '{' && d[len(d)-1] == '}' && bytes.Contains(d, []byte(`"alg"`))
}
