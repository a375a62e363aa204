// Package mask owns airlock's masking engine: it finds secrets and
// personal data in MCP responses and replaces them with a typed mask,
// "[MASKED:<type>]", before the agent or the audit log sees them. A mask
// covers the secret and nothing more. The ext_proc service calls it by
// what a body holds: Profile.MaskJSON on a body that parses as JSON (and
// on each line of JSON lines), Profile.MaskText on any other body, and
// SSEMasker on a text/event-stream; the counts it returns (type → number,
// never the text) go into the audit event.
//
// # Profiles
//
// A Profile says what to mask. It is data (ProfileConfig, with YAML tags)
// compiled by Compile or, with the built-ins, by NewSet. The built-ins:
//
//   - "default": every detector but email and phone, and the key rules
//     password, passwd, pwd, pass, passphrase, secret, client_secret,
//     secret_key, private_key, api_key, apikey, x_api_key, access_key,
//     token, access_token, refresh_token, id_token, auth_token,
//     session_token, auth, authorization, proxy_authorization,
//     credential, credentials, session_key, cookie, set_cookie, dsn,
//     connection_string, conn_str, secret_access_key,
//     aws_secret_access_key, aws_session_token, card_number, cvv, cvc —
//     except the names page_token, next_token, continuation_token,
//     sync_token, pagination_token, resume_token, cursor_token,
//     start_token (pagination cursors an agent sends back),
//     progress_token (MCP's _meta.progressToken), bos_token,
//     eos_token, pad_token, unk_token, sep_token, cls_token, mask_token
//     (tokenizer settings), and as whole names PWD and OLDPWD (the
//     shell's directories), aws_access_key (an id its own detector
//     masks, or a count of those masks), pass ("--- PASS: TestX" in
//     test output; DB_PASS and ssh_pass stay masked) and auth0 (the
//     identity provider, not auth numbered 0). The lists are
//     defaultKeys and defaultExceptKeys in profile.go; a custom profile
//     adds its own with keys and except_keys;
//   - "strict": every detector (e-mail addresses and phone numbers too),
//     the same rules and exceptions, and also ssn, social_security_number,
//     date_of_birth, passport_number, iban, tax_id;
//   - "off": nothing (MaskJSON still checks the document is JSON).
//
// # Detectors
//
// Detectors run on the decoded value of every JSON string (so escapes such
// as \u0041 or \/ hide nothing) and on text; text holding such escapes
// (a body not labelled JSON, or JSON that does not parse) is scanned
// decoded as well, and what is found there is masked in the original
// bytes, whole escapes included, so JSON text stays valid. Each detector
// is anchored on one trigger byte in a single pass and confirmed by hand;
// no regular expression runs unless the operator adds patterns.
//
//   - aws_access_key: AKIA or ASIA + 16 of [A-Z0-9], standing alone.
//   - aws_secret_key: exactly 40 of [A-Za-z0-9/+] assigned to a name that
//     says so: AWS_SECRET_ACCESS_KEY=…, aws_secret_access_key = … (also
//     "secret" with "aws" earlier on the line), or a JSON member
//     "SecretAccessKey"/"aws_secret_access_key" and the like; or standing
//     alone, of mixed case with a digit, within 200 bytes (before or
//     after) of an AWS access key id in the same text (console CSV,
//     tables, docs). A bare 40-character string with no AWS name or key
//     id near it is not masked, nor ever a git SHA (hex, one case).
//   - github_token: ghp_ gho_ ghu_ ghs_ ghr_ + 30 or more alphanumerics,
//     github_pat_ + 22 or more.
//   - slack_token: xoxa- xoxb- xoxp- xoxr- xoxs- xoxo- xapp- + 10 or more.
//   - stripe_key: sk_live_ sk_test_ rk_live_ rk_test_ + 10 or more,
//     whsec_ + 24 or more (publishable pk_ keys are not secret).
//   - google_api_key: AIza + 35 of [A-Za-z0-9_-].
//   - openai_key: sk- + 20 or more of [A-Za-z0-9_-] holding a digit, an
//     upper-case and a lower-case letter (so "sk-learn-…" prose is not);
//     anthropic_key: sk-ant- + 20 or more.
//   - huggingface_token: hf_ + 30 or more letters and digits holding an
//     upper-case and a lower-case letter (hf_hub_download is a name).
//   - npm_token: npm_ + exactly 36 letters and digits.
//   - pypi_token: pypi-AgEIcHlwaS5vcmc (every PyPI token's macaroon
//     location, base64 of "pypi.org") + 50 or more of [A-Za-z0-9_-].
//   - digitalocean_token: dop_v1_, doo_v1_ or dor_v1_ + exactly 64
//     lower-case hex digits.
//   - slack_webhook: the path after http(s)://hooks.slack.com/services/
//     (or workflows/, triggers/): 30 or more of [A-Za-z0-9+/_-] holding
//     a '/', of mixed case with a digit (so the documentation's
//     T00000000/B00000000/XXXX… is left); scheme, host and kind stay.
//   - jwt: eyJ… base64url parts joined by dots, 3 (JWS, the signature may
//     be empty) or 5 (JWE), whose header decodes to a JSON object with an
//     "alg" member. Base64 blobs without the dots, or whose header is not
//     such JSON, are left.
//   - private_key: a PEM block -----BEGIN …PRIVATE KEY[ BLOCK]----- through
//     its -----END …----- line when only base64 lines (or base64 separated
//     by spaces, a key flattened onto one line; line breaks may be
//     escaped, "\n") and the Proc-Type/DEK-Info headers of an encrypted
//     key come between. Otherwise — cut off, or other text before the END
//     — the header line and the lines of base64 right after it are
//     masked, and nothing further: a mask never hides what follows it.
//     Public keys and certificates are left.
//   - url_password: the password of scheme://user:password@host; the user
//     and host stay. A placeholder (%s, ${PASS}, {password}, <password>)
//     is not a password.
//   - bearer_token: the token after "Bearer " (any case) when it has 8 or
//     more characters and a digit; basic_auth: the credentials after
//     "Basic " when they decode to printable user:password.
//   - assignment: in text, the value of NAME=value, NAME: value,
//     "NAME": "value", NAME := value, NAME => value, and of the options
//     --NAME value and --NAME=value, where NAME matches a key rule (see
//     Field rules: DB_PASSWORD=…, smtp.password: …, X-Api-Key: …,
//     ?password=… in a query string or DSN, PGPASSWORD=… psql); of a
//     typed declaration, where the name comes before the type (token:
//     string = "…", var secret string = "…"); -pSECRET on a mysql,
//     mysqldump or mariadb command line; and the password of curl's
//     -u user:password, --user user:password (also quoted, attached or
//     after '='; the command line may go on over lines ending in '\';
//     no password, a variable or an upper-case placeholder is left). The
//     value is
//     quoted, or runs to a space, ',', ';', '&', a quote or a closing
//     bracket; after an auth scheme (Authorization: Bearer x) it takes the
//     next word too; a cookie rule's value (Cookie:, Set-Cookie:) runs to
//     the end of the line. Only literals are masked — values, not code:
//     an unquoted value is left when it is a variable or interpolation
//     ($TOKEN, ${X}, $(cmd), {{ .Values.x }}), holds a call, index or
//     member access (getpass(), os.environ["K"], req.headers.x,
//     self.token, a->b, A::B), is a string prefix (f"…"), a keyword (None,
//     null, true, …) or starts with YAML's !, & or *, or an operator
//     follows it (a + b, a || b, x ? y : z), or it looks like a variable
//     (lowerCamelCase words without digits, noCreds; one to three letters
//     or digits in code, secret = v, token: tok, "BASIC_AUTH": 1,; a name
//     matching a key rule, Password: dbPassword), or is only '*'
//     (redacted, or Markdown's **password:**); a quoted value is left when
//     it interpolates ("${X}", "$TOKEN", "{{ x }}", "#{x}"), is only an
//     auth scheme ("Bearer " + token) or a keyword, is shorter than three
//     characters, is not closed on its line, or is code between two
//     strings ("A=" + a + "B="). ${NAME:-default} is a shell expansion,
//     not an assignment. Code thus stays byte-identical. A
//     --NAME value option is not masked when the value starts with '-' or
//     is an upper-case placeholder (--token TOKEN in help text). After
//     ':' an unquoted value of letters only is masked when it ends the
//     line (YAML: "password: changeme"), not when more words follow (prose,
//     such as tool descriptions written as docstrings: "token: The token
//     to use.") nor when it names a type (password: string). If another
//     detector finds a secret in the value, that detector's mask is used
//     instead.
//   - card_number: 13–19 digits, optionally grouped by single spaces or
//     dashes, standing alone (no letter, digit or decimal point next to
//     them), with a card network's prefix and a length that network
//     issues (Visa 4… 13, 16, 19; Mastercard 51–55… and 2221–2720… 16;
//     other 5… 13–19; Amex 34…/37… 15; Diners 30…, 36…, 38…, 39… 14–19;
//     JCB 35… 16–19; 6… 13–19), not one digit repeated, passing the Luhn
//     check. The lengths keep IMEIs out: 15 digits, Luhn-valid by design,
//     with reporting bodies (35, 44, 49, 51–54, 86, …) no 15-digit card
//     has (those of 30 and 50 remain card-shaped). A JSON number is a
//     card number only under a member name that says card or PAN
//     (cardName: card_number, cardNumber, pan, cc_number, …); it is then
//     masked as the string mask, or as 0 when the profile's NumberMask
//     is "zero". Other numbers keep their type and value.
//   - email (strict): local@domain.tld.
//   - phone (strict): +country numbers of 8–15 digits (groups split by
//     spaces, dashes, dots, parentheses), (ddd) ddd-dddd, ddd-ddd-dddd,
//     ddd.ddd.dddd.
//
// Tokens must stand alone: one that directly follows a letter, digit,
// '_', '+' or '/' (it is then inside a longer word or a base64 blob) is not
// a match. Masks the profile writes, already in the text, are skipped, so
// masking is idempotent: masking the output again changes nothing. Only
// masks of the profile's own types count ("[MASKED:" around anything
// else is text like any other, so it cannot shield a secret).
//
// Not detected: secrets without a recognisable shape or name (a bare
// password, a 40-character AWS secret with no AWS name or key id near it
// — in JSON, a key id and a secret in two different strings are not near
// each other — generic hex or base64 keys), literals that look like code
// (a password written as a dotted identifier, p4ss.w0rd, or holding a
// bracket), card numbers run together with other digits (a
// run of more than 19), IMEIs of reporting body 30 or 50 written as
// strings, tokens of services without a detector here, PuTTY and
// other non-PEM key formats, secrets split across two JSON strings or two
// SSE events, secrets encoded (base64, URL-encoding) inside text. A JWT
// that starts after a '-' inside a longer base64url run that already
// failed as a JWT is not looked at again (that would cost quadratic time).
// Custom patterns can cover what an operator knows to look for.
//
// False positives are the price of the heuristics, and are kept low by the
// checks above: prefix + length + character class for tokens, a decoded
// header for JWTs, Luhn and network prefixes for card numbers. Still, the
// assignment detector masks "password: x1" or "token=abc" wherever they
// appear, and the strict profile's phone and e-mail detectors will mask
// some identifiers that look like them.
//
// # Field rules
//
// Key rules match JSON member names at any depth, and the names of the
// assignment detector in text, after normalization: ASCII case is
// folded, the name split into words at '_', '-', '.', any other
// non-alphanumeric byte and camelCase steps (dbPassword, DBPassword), and
// after a known prefix run into the next word (pg, mysql, mongo, redis,
// db, aws, x, api, smtp, ldap: PGPASSWORD, xapikey). A rule matches a name
// that ends with the rule at a word start: "password" matches password,
// db_password, DB_PASSWORD, dbPassword, PGPASSWORD and smtp.password, not
// passwordless or bypass; "token" matches GITHUB_TOKEN, not max_tokens,
// token_count, token_type or tokenizer; "secret" matches client-secret,
// not secretName or secretRef (Kubernetes names a Secret there). Version
// and number words at the end do not end a name (versionEnd): a word of
// digits, v and digits, or digits ending the last word — password2,
// token_v2, DB_PASSWORD_2 and ses_smtp_password_v4 match password and
// token; a name of only such a word (v2) matches nothing. Of two
// rules ending a name the longer names the mask (clientSecret →
// field:client_secret). Exceptions (ProfileConfig.ExceptKeys) are matched
// the same way and win over a rule no longer than they are, so
// next_page_token stays while a profile may still list it as a rule;
// they match the name with and without its version words, so next_token
// also excepts next_token_v2; "=name" excepts the whole name as written
// only. session_id, sessionId and
// "session" itself are not masked by design: an agent must echo session
// ids back (MCP's own session ids are such ids), and "session" names
// objects and packages (express-session) more often than secrets;
// session_token, session_key, session_secret and session cookies are
// masked. A name holding one of the profile's masks matches no rule, so
// masking stays idempotent.
//
// Key rules mask non-empty string and number values only: an object or
// array under a secret-sounding name is searched instead of replaced,
// because tools/list input schemas describe "password" and "token"
// parameters as objects, and an agent must still see those; empty
// strings, null and booleans hide nothing. Path rules
// ($.result.structuredContent.credentials.*) mask whatever value is there.
// A masked member becomes "[MASKED:field:<key>]" (for a path, the last
// member name in it); a masked number becomes 0 instead when the
// profile's NumberMask is "zero". Field rules and paths do not apply to the
// "jsonrpc", "id" and "method" members of a JSON-RPC message (the
// document, or each element of a batch), so a response still answers its
// request; detectors do (an id will not look like a key).
//
// Member names are scanned by the detectors too: a secret used as a
// name is masked (two names may then be the same mask).
//
// # JSON in strings
//
// A string whose content is a JSON object, array or string (tool results
// whose text is JSON) is masked as JSON, with key and path rules applying
// inside it, and encoded back into the string; up to 8 levels deep, after
// which strings are masked as text. A string that only looks like JSON
// and does not parse is masked as text. A string that is masked is
// encoded again from its value: escapes that were not needed (\u0041,
// \/) come out as plain characters. Strings with nothing masked keep
// their bytes.
//
// # Cost
//
// MaskJSON validates while it masks, in one pass, and copies nothing until
// the first mask: a document with nothing to mask comes back as the same
// slice, without an allocation. BenchmarkMaskJSONRatio measures its
// throughput against json.Valid on the same realistic tool results.
package mask
