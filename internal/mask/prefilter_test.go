package mask

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cheap rejections in front of keySet.lookup (lastThree) and
// awsSecretName (holdsSecret) must never reject a name the full test
// accepts: these tests run both with and without them over generated
// names and over every name-like run of the fuzz seeds and the
// test/secretscan corpora.

// awsSecretNameRef is awsSecretName as it was before holdsSecret, kept as
// the reference.
func awsSecretNameRef(name, before []byte) bool {
	if len(name) < 6 || len(name) > maxKeyLen {
		return false
	}
	var buf [maxKeyLen]byte
	n := 0
	for _, c := range name {
		switch nameKind[c] {
		case nkSep:
			continue
		case nkUpper:
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	norm := buf[:n]
	if bytes.Contains(norm, []byte("secretaccesskey")) {
		return true
	}
	if !bytes.Contains(norm, []byte("secret")) {
		return false
	}
	if bytes.Contains(norm, []byte("aws")) {
		return true
	}
	if k := bytes.LastIndexAny(before, "\n\r"); k >= 0 {
		before = before[k+1:]
	}
	for k := 0; k+3 <= len(before); k++ {
		if hasPrefixFold(before, k, "aws") {
			return true
		}
	}
	return false
}

// prefilterNames returns names made of rule words, prefixes and version
// and number endings in several spellings, and the name-like runs
// ([A-Za-z0-9_.-]) of the fuzz seeds and the secretscan corpora.
func prefilterNames(t *testing.T) []string {
	words := append(append(append([]string{}, defaultKeys...), strictKeys...), defaultExceptKeys...)
	words = append(words, "secret", "aws", "access", "key", "v", "x", "sec-ret", "S_E_C_R_E_T", "ssecret", "secsecret", "")
	pre := []string{"", "db_", "PG", "x", "aws_", "my.", "A", "v2_", "1"}
	post := []string{"", "2", "_2", "_v2", "V3", "v12", "_2_v3", "_v", "2fa", "-1-2", "_V_2", "x9", "9v9", "ä"}
	var names []string
	for _, w := range words {
		for _, p := range pre {
			for _, s := range post {
				for _, n := range []string{p + w + s, strings.ToUpper(p + w + s)} {
					names = append(names, n)
				}
			}
		}
	}
	names = append(names, "v12", "V1", "12", "v", "v_12", "xv12", "1v2", "2025-06-01T12")
	var files []string
	for _, g := range []string{"testdata/fuzz/*/*", "../../test/secretscan/testdata/*/*"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no corpus files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); {
			e := run(b, i, cName)
			if e == i {
				i++
				continue
			}
			names = append(names, string(b[i:min(e, i+maxKeyLen)]))
			i = e
		}
	}
	return names
}

func TestPrefilterExact(t *testing.T) {
	names := prefilterNames(t)
	for _, prof := range []string{DefaultProfile, StrictProfile} {
		p := builtins[prof]
		full := p.keys
		full.tri = nil // the reference: no prefilter
		for _, n := range names {
			typ, ok := p.keys.lookup([]byte(n))
			rtyp, rok := full.lookup([]byte(n))
			if typ != rtyp || ok != rok {
				t.Errorf("%s: lookup(%q) = %q, %v; without the prefilter %q, %v", prof, n, typ, ok, rtyp, rok)
			}
		}
	}
	for _, before := range []string{"", "aws ", "x\nAWS_", "no"} {
		for _, n := range names {
			got := awsSecretName([]byte(n), []byte(before))
			want := awsSecretNameRef([]byte(n), []byte(before))
			if got != want {
				t.Errorf("awsSecretName(%q, %q) = %v, want %v", n, before, got, want)
			}
		}
	}
}
