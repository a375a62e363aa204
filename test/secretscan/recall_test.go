package secretscan

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
)

var update = flag.Bool("update", false, "rewrite the figures in docs/masking.md")

// gitleaksVersion is the reference scanner's version as go.mod pins it
// (the figures name it, and change with it).
var gitleaksVersion = func() string {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		panic(err)
	}
	const mod = "github.com/zricethezav/gitleaks/v8 "
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), mod); ok {
			return strings.Fields(v)[0]
		}
	}
	panic("go.mod does not require " + mod)
}()

// knownMiss is a gitleaks finding the masking engine does not yet mask:
// rule is the gitleaks rule id, file the corpus document. TestRecall
// tolerates these, reports each one, and fails when one is masked after
// all (the entry must then go): the list only shrinks.
type knownMiss struct {
	rule, file, why string
}

var knownMisses = []knownMiss{}

// finding is one secret gitleaks reported.
type finding struct {
	rule, secret string
}

var (
	detOnce sync.Once
	det     *detect.Detector
	detErr  error
)

// detector is gitleaks with its default configuration (every rule it
// ships), quiet.
func detector(t *testing.T) *detect.Detector {
	t.Helper()
	detOnce.Do(func() {
		logging.Logger = zerolog.Nop()
		det, detErr = detect.NewDetectorDefaultConfig()
	})
	if detErr != nil {
		t.Fatal(detErr)
	}
	return det
}

// scan runs gitleaks over text; path, when set, is the file name rules
// scoped to paths (Kubernetes YAML, ...) look at.
func scan(t *testing.T, text, path string) []finding {
	var out []finding
	for _, f := range detector(t).Detect(detect.Fragment{Raw: text, FilePath: path}) {
		out = append(out, finding{rule: f.RuleID, secret: f.Secret})
	}
	return out
}

// tally counts findings and masked findings, per delivery.
type tally struct {
	found, masked map[string]int
}

func TestRecall(t *testing.T) {
	docs := loadCorpus(t, "recall")
	stats := map[string]*tally{}
	missed := map[[2]string]bool{} // (rule, file) not masked in some delivery
	for i, d := range docs {
		raw := scan(t, d.text, d.name)
		if len(raw) == 0 {
			t.Errorf("%s: gitleaks finds nothing in it, so it measures nothing: give it a secret gitleaks knows", d.name)
		}
		for _, how := range deliveries {
			body := wire(d, 100+i, how)
			seen := map[finding]bool{}
			var fs []finding
			for _, f := range append(raw, scan(t, string(body), "")...) {
				if f.secret != "" && !seen[f] {
					seen[f] = true
					fs = append(fs, f)
				}
			}
			engine, _, err := maskEngine(body, how)
			if err != nil {
				t.Errorf("%s via %s: masking: %v", d.name, how, err)
				continue
			}
			proc := maskExtproc(t, body, how)
			for _, f := range fs {
				st := stats[f.rule]
				if st == nil {
					st = &tally{found: map[string]int{}, masked: map[string]int{}}
					stats[f.rule] = st
				}
				st.found[how]++
				where := []string{}
				if leaks(engine, f.secret) {
					where = append(where, "engine")
				}
				if leaks(proc, f.secret) {
					where = append(where, "ext_proc")
				}
				if len(where) == 0 {
					st.masked[how]++
					continue
				}
				missed[[2]string{f.rule, d.name}] = true
				if k := known(f.rule, d.name); k != nil {
					t.Logf("known miss: %s in %s via %s (%s): %s", f.rule, d.name, how, strings.Join(where, ", "), k.why)
					continue
				}
				t.Errorf("%s: gitleaks %s finds %s; it, or half of it, is still there after masking via %s (%s)",
					d.name, f.rule, redact(f.secret), how, strings.Join(where, ", "))
			}
		}
	}
	for _, k := range knownMisses {
		if !missed[[2]string{k.rule, k.file}] {
			t.Errorf("knownMisses: %s in %s is masked now: remove the entry", k.rule, k.file)
		}
	}
	table := recallTable(stats, len(docs))
	t.Log("\n" + table)
	checkDoc(t, "recall", table)
}

func known(rule, file string) *knownMiss {
	for i, k := range knownMisses {
		if k.rule == rule && k.file == file {
			return &knownMisses[i]
		}
	}
	return nil
}

// recallTable is the Markdown table of masked/found per rule and
// delivery, then the known misses.
func recallTable(stats map[string]*tally, ndocs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gitleaks %s (default rules) over %d documents, each delivered %d ways; a finding counts as masked when no half of its secret is left in the output of the engine or of the ext_proc processor.\n\n",
		gitleaksVersion, ndocs, len(deliveries))
	b.WriteString("| gitleaks rule | text content | structuredContent | SSE | recall |\n")
	b.WriteString("|---|---:|---:|---:|---:|\n")
	total := &tally{found: map[string]int{}, masked: map[string]int{}}
	row := func(name string, st *tally) {
		fmt.Fprintf(&b, "| %s |", name)
		var f, m int
		for _, how := range deliveries {
			fmt.Fprintf(&b, " %d/%d |", st.masked[how], st.found[how])
			f += st.found[how]
			m += st.masked[how]
		}
		fmt.Fprintf(&b, " %s |\n", percent(m, f))
	}
	for _, rule := range sortedKeys(stats) {
		row("`"+rule+"`", stats[rule])
		for _, how := range deliveries {
			total.found[how] += stats[rule].found[how]
			total.masked[how] += stats[rule].masked[how]
		}
	}
	row("**all**", total)
	b.WriteString("\n")
	if len(knownMisses) == 0 {
		b.WriteString("Known misses: none.\n")
	} else {
		b.WriteString("Known misses (what the engine does not mask yet, and why):\n\n")
		for _, k := range knownMisses {
			fmt.Fprintf(&b, "- `%s` in `%s`: %s\n", k.rule, k.file, k.why)
		}
	}
	return b.String()
}

func percent(m, f int) string {
	if f == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(m)/float64(f))
}

const docPath = "../../docs/masking.md"

// checkDoc keeps the generated block named name in docs/masking.md (between
// <!-- secretscan:name --> and <!-- /secretscan:name -->) equal to text:
// with -update it rewrites the block, else a stale block fails the test,
// so the published figures are the measured ones.
func checkDoc(t *testing.T, name, text string) {
	t.Helper()
	begin, end := "<!-- secretscan:"+name+" -->\n", "<!-- /secretscan:"+name+" -->"
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q block", docPath, strings.TrimSpace(begin), end)
	}
	if doc[i+len(begin):j] == text {
		return
	}
	if !*update {
		t.Errorf("the %s figures in docs/masking.md are stale: run `cd test/secretscan && go test -run 'TestRecall|TestFalsePositives' -update` and commit the result", name)
		return
	}
	doc = doc[:i+len(begin)] + text + doc[j:]
	if err := os.WriteFile(filepath.Clean(docPath), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated the %s figures in %s", name, docPath)
}
