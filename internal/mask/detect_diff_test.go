package mask

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// differentialInputs are the texts the differential tests run over: the
// fuzz seeds, the test/secretscan corpora, the benchmark corpus, the
// heads of the adversarial inputs and a few AWS cases.
func differentialInputs(t *testing.T) [][]byte {
	var inputs [][]byte
	for _, g := range []string{"testdata/fuzz/*/*", "../../test/secretscan/testdata/*/*"} {
		files, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, b)
		}
	}
	inputs = append(inputs, corpus(true)...)
	for _, a := range adversarial {
		inputs = append(inputs, []byte(a[:min(len(a), 4096)]))
	}
	inputs = append(inputs, []byte("AWS_SECRET_ACCESS_KEY="), []byte("aws_secret =  "), []byte("x:= "),
		[]byte("aws secret: "+fakeAWSSecret), []byte("secret_access_key=\""+fakeAWSSecret+"\""), []byte("MY_SECRET="+fakeAWSSecret))
	return inputs
}

// TestFireAssignDifferential checks that fireAssign, which asks whether a
// name is an AWS secret's only of a value that can be one, finds what
// fireAssignRef (fireAssign as it was, asking of every name) found, and
// resumes at the same place, at every ':' and '=' of the fuzz seeds, the
// test/secretscan corpora, the benchmark corpus and the adversarial
// inputs.
func TestFireAssignDifferential(t *testing.T) {
	inputs := differentialInputs(t)
	all, err := Compile(ProfileConfig{Name: "all", Extends: StrictProfile})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range []*Profile{Default(), all} {
		for _, s := range inputs {
			for i, c := range s {
				if c != ':' && c != '=' {
					continue
				}
				for _, floor := range []int{0, max(0, i-3)} {
					for _, noAssign := range []bool{false, true} {
						got, gn := p.fireAssign(s, i, floor, nil, noAssign)
						want, wn := p.fireAssignRef(s, i, floor, nil, noAssign)
						if gn != wn || !slices.Equal(got, want) {
							t.Fatalf("fireAssign(%q, %d, %d, %v) = %v, %d; want %v, %d",
								s[max(0, i-40):min(len(s), i+60)], i, floor, noAssign, got, gn, want, wn)
						}
						n++
					}
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d separators", n)
	}
}

// fireAssignRef is fireAssign before the AWS name check moved after the
// value check, kept as the reference. It handles NAME=value and NAME:
// value (also "NAME": "value", NAME := value, NAME => value) at the
// separator s[i]. The value is masked
// as an AWS secret key when it is one under an AWS-secret name, else as
// field:<key> when NAME matches a key rule — unless a detector finds a
// more specific secret in it, whose match is used instead.
func (p *Profile) fireAssignRef(s []byte, i, floor int, ms []match, noAssign bool) ([]match, int) {
	n := len(s)
	if s[i] == '=' && ((i > 0 && strings.IndexByte("=!<>", s[i-1]) >= 0) || (i+1 < n && s[i+1] == '=')) {
		return ms, i + 1 // a comparison
	}
	j := i
	for j > floor && i-j < 8 && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	var q byte
	if j > floor && (s[j-1] == '"' || s[j-1] == '\'') {
		q = s[j-1]
		j--
		if j > floor && s[j-1] == '\\' { // \"NAME\": in text holding escaped JSON
			j--
		}
	}
	ne := j
	for j > floor && ne-j <= maxKeyLen && is(s[j-1], cName) {
		j--
	}
	ns := j
	if ns == ne || ne-ns > maxKeyLen || (q != 0 && (ns == floor || s[ns-1] != q)) {
		return ms, i + 1
	}
	name := s[ns:ne]
	if !hasLetter(name) || (ns >= 2 && s[ns-2] == '$' && s[ns-1] == '{') {
		return ms, i + 1 // ${NAME:-default} is a shell expansion
	}
	if s[i] == '=' && q == 0 && typeName(name) {
		// A typed declaration names its variable before the type:
		// token: string = "…" (TypeScript, Kotlin, Python), var token
		// string = "…" (Go).
		if ds, de := declaredName(s, ns, floor); de > ds {
			ns, ne, name = ds, de, s[ds:de]
		}
	}
	aws := p.on(dAWSSecretKey) && awsSecretName(name, s[max(0, ns-32):ns])
	var typ string
	if !noAssign && p.on(dAssignment) {
		typ, _ = p.keys.lookup(name)
	}
	if !aws && typ == "" {
		return ms, i + 1
	}
	v := i + 1
	if v < n && ((s[i] == ':' && s[v] == '=') || (s[i] == '=' && s[v] == '>')) {
		v++
	}
	for v < n && v-i < 16 && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v >= n {
		return ms, n
	}
	// Where the value starts, and the quote that ends it (0: none; '\\':
	// \" in text holding escaped JSON).
	vs, q := v, byte(0)
	switch c := s[v]; {
	case c == '"' || c == '\'':
		vs, q = v+1, c
	case c == '\\' && v+1 < n && s[v+1] == '"':
		vs, q = v+2, '\\'
	}
	if aws {
		// Only the 40 bytes are looked at, so a value that is not a key
		// costs nothing more.
		e := runMax(s, vs, cB64Std, 41)
		if e-vs == 40 && (e == n || (q == 0 && valueStop[s[e]]) || (q != 0 && s[e] == q)) {
			return append(ms, match{vs, e, "aws_secret_key"}), e
		}
	}
	if typ == "" {
		return ms, i + 1
	}
	// The value is scanned to its end only here, where it is then
	// skipped whatever happens: the scan stays linear.
	ve := vs
	switch q {
	case 0:
		ve = p.valueEnd(s, vs)
		if p.containsMask(s[vs:ve]) {
			return ms, ve // masked already, whole or in part
		}
		if !literal(s, vs, ve) || variable(s, i, vs, ve) {
			return ms, i + 1
		}
		if s[i] == ':' && cookieRule(typ) && strings.IndexByte(string(s[vs:ve]), '=') > 0 {
			// Cookie: a=1; b=2 — the whole header value is the secret.
			for ve = lineEnd(s, vs); ve > vs && (s[ve-1] == ' ' || s[ve-1] == '\t'); ve-- {
			}
			if p.containsMask(s[vs:ve]) {
				return ms, ve
			}
			break
		}
		if ve < n && s[ve] == ' ' && isAuthScheme(s[vs:ve]) {
			w := ve + 1
			for w < n && s[w] == ' ' {
				w++
			}
			if we := p.valueEnd(s, w); we > w {
				if !literal(s, w, we) {
					return ms, i + 1 // Authorization: Bearer $TOKEN
				}
				ve = we
			}
		}
		if isAuthScheme(s[vs:ve]) {
			return ms, i + 1 // auth: basic — the scheme alone
		}
		if identChain(s[vs:ve]) {
			if _, named := p.keys.lookup(s[vs:ve]); named {
				return ms, i + 1 // Password: dbPassword, password=password: a variable
			}
		}
	case '\\':
		for ve < n && s[ve] != '"' && s[ve] != '\\' && s[ve] != '\n' && s[ve] != '\r' {
			ve++
		}
	default:
		for ve < n && s[ve] != q && s[ve] != '\n' && s[ve] != '\r' {
			if s[ve] == '\\' && ve+1 < n && s[ve+1] != '\n' && s[ve+1] != '\r' {
				ve++
			}
			ve++
		}
		ve = min(ve, n)
	}
	if ve <= vs {
		return ms, i + 1
	}
	if q != 0 && (ve >= n || (q == '\\' && s[ve] != '\\') || (q != '\\' && s[ve] != q) || !quotedLiteral(s[vs:ve])) {
		// Not closed on its line ("NAME=" + x: the quote closed a string
		// of code), or "${TOKEN}", "Bearer " + token.
		return ms, i + 1
	}
	if s[i] == ':' && q == 0 && !secretish(s[vs:ve]) && (!endsLine(s, ve) || typeName(s[vs:ve])) {
		// "token: The token to use." — prose (tool descriptions written
		// as docstrings), not YAML: a plain word followed by more words;
		// "password: string," — a type annotation.
		return ms, i + 1
	}
	if p.containsMask(s[vs:ve]) {
		return ms, ve // masked already, whole or in part
	}
	return p.valueMatch(s, vs, ve, typ, ms), ve
}

// TestTriggerMayDifferential checks that where underMay or dashMay turns
// a '_' or '-' away, fireUnder and fireDash would have found nothing and
// gone on at the next byte, at every '_' and '-' of the inputs.
func TestTriggerMayDifferential(t *testing.T) {
	all, err := Compile(ProfileConfig{Name: "all", Extends: StrictProfile})
	if err != nil {
		t.Fatal(err)
	}
	inputs := append(differentialInputs(t), []byte("ghp_"+strings.Repeat("a1B", 12)), []byte("xoxb-123456789012-abcdefghij"),
		[]byte("mysql -pS3cret"), []byte("curl -u user:pw"), []byte("--password hunter2"), []byte("sk-proj-"+strings.Repeat("aB3", 10)))
	n := 0
	for _, p := range []*Profile{Default(), all} {
		for _, s := range inputs {
			for i, c := range s {
				t0 := p.trig[c]
				if (t0 != trUnder || underMay(s, i)) && (t0 != trDash || dashMay(s, i)) {
					continue
				}
				var got []match
				var next int
				if t0 == trUnder {
					got, next = p.fireUnder(s, i, 0, nil)
				} else {
					got, next = p.fireDash(s, i, 0, nil)
				}
				if len(got) != 0 || next != i+1 {
					t.Fatalf("turned away at (%q, %d) but the detector found %v, next %d", s[max(0, i-10):min(len(s), i+30)], i, got, next)
				}
				n++
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d rejections", n)
	}
}
