package rego

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		query string
		want  []string // substrings of the error, with {dir} replaced
	}{
		{
			name:  "syntax error names file line and column",
			files: map[string]string{"p/p.rego": "package p\n\ndecision := {\n\t\"outcome\" \"allow\",\n}\n"},
			query: "data.p.decision",
			want:  []string{"policy load {dir}", "{dir}/p/p.rego:4:12: rego_parse_error"},
		},
		{
			name:  "compile error names file line and column",
			files: map[string]string{"p.rego": "package p\n\ndecision := x if {\n\tx := nosuchfunc(1)\n}\n"},
			query: "data.p.decision",
			want:  []string{"policy compile {dir}", "{dir}/p.rego:4:7: rego_type_error: undefined function nosuchfunc"},
		},
		{
			name:  "unsafe variable",
			files: map[string]string{"p.rego": "package p\n\ndecision := {\"outcome\": y} if {\n\ty != 1\n}\n"},
			query: "data.p.decision",
			want:  []string{"{dir}/p.rego:4:2: rego_unsafe_var_error: var y is unsafe"},
		},
		{
			name:  "several problems are all listed",
			files: map[string]string{"a.rego": "package a\n\nx := [1 2]\n", "b.rego": "package b\n\ny := {1: }\n"},
			query: "data.a.x",
			want:  []string{" problems:\n", "{dir}/a.rego:3:9: rego_parse_error", "{dir}/b.rego:3:"},
		},
		{
			name:  "undefined query",
			files: map[string]string{"p.rego": "package p\n\ndecision := {\"outcome\": \"allow\"}\n"},
			query: "data.airlock.decision",
			want:  []string{"policy query {dir}", `query "data.airlock.decision" names no rule or data document in the policy`},
		},
		{
			name:  "misspelt rule",
			files: map[string]string{"p.rego": "package p\n\ndecision := {\"outcome\": \"allow\"}\n"},
			query: "data.p.decisoin",
			want:  []string{`"data.p.decisoin" names no rule or data document`},
		},
		{
			name:  "query that does not parse",
			files: map[string]string{"p.rego": "package p\n\ndecision := 1\n"},
			query: "data.p[",
			want:  []string{"policy query {dir}", "rego_parse_error"},
		},
		{
			name:  "query with two expressions",
			files: map[string]string{"p.rego": "package p\n\ndecision := 1\n"},
			query: "data.p.decision; true",
			want:  []string{"has 2 expressions, want one"},
		},
		{
			name: "bad JSON data file names file line and column",
			files: map[string]string{
				"p.rego":          "package p\n\ndecision := 1\n",
				"data/rules.json": "{\n  \"a\": 1,\n  \"b\": oops\n}\n",
			},
			query: "data.p.decision",
			want:  []string{"{dir}/data/rules.json:3:8: invalid JSON data: invalid character 'o'"},
		},
		{
			name: "bad YAML data file",
			files: map[string]string{
				"p.rego":    "package p\n\ndecision := 1\n",
				"data.yaml": "airlock:\n  rules: [unclosed\n",
			},
			query: "data.p.decision",
			want:  []string{"policy load {dir}", "data.yaml", "yaml"},
		},
		{
			name: "data conflicting between files",
			files: map[string]string{
				"p.rego": "package p\n\ndecision := 1\n",
				"a.json": `{"x": {"y": 1}}`,
				"b.yaml": "x:\n  y: 2\n",
			},
			query: "data.p.decision",
			want:  []string{"policy load {dir}", "merge error"},
		},
		{
			name:  "no rego files",
			files: map[string]string{"data.json": "{}"},
			query: "",
			want:  []string{"no .rego files found"},
		},
		{
			name:  "only a test file is not a policy",
			files: map[string]string{"p_test.rego": "package p_test\n\ntest_x if true\n"},
			query: "",
			want:  []string{"no .rego files found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				write(t, dir, name, content)
			}
			_, err := Load(dir, tt.query)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "{dir}", dir)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			var pe *policy.PolicyError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Errorf("error %T is not a *PolicyError with problems", err)
			}
		})
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := Load(dir, ""); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("got %v, want an error naming %s", err, dir)
	}
	file := filepath.Join(t.TempDir(), "p.rego")
	write(t, filepath.Dir(file), "p.rego", "package p\n")
	if _, err := Load(file, ""); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("got %v, want a not-a-directory error", err)
	}
}

func TestLoadSkipsTestsHiddenAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "airlock/decision.rego", "package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": data.airlock.why}\n")
	write(t, dir, "airlock/data.json", `{"why": "from data"}`)
	// A test file that does not compile on its own would break Load if it were read.
	write(t, dir, "airlock/decision_test.rego", "package airlock_test\n\ntest_x if { undefined_fn(1) }\n")
	write(t, dir, ".git/broken.rego", "package broken\n\nx := [\n")
	write(t, dir, "README.md", "# not policy\n")
	e, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "airlock", "data.json"), filepath.Join(dir, "airlock", "decision.rego")}
	if diff := cmp.Diff(want, e.Files()); diff != "" {
		t.Errorf("Files() (-want +got):\n%s", diff)
	}
	d, err := e.Evaluate(context.Background(), &policy.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Reason != "from data" {
		t.Errorf("reason %q, want the data file's value (data files load under their directory)", d.Reason)
	}
}

func TestLoadFollowsSymlinkedDirectories(t *testing.T) {
	// A Kubernetes ConfigMap volume: files are links into a hidden ..data
	// directory, which itself is a link to a timestamped directory.
	dir := t.TempDir()
	write(t, dir, "..2026_01_01/airlock/decision.rego", "package airlock\n\ndecision := {\"outcome\": \"allow\"}\n")
	if err := os.Symlink("..2026_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/airlock", filepath.Join(dir, "airlock")); err != nil {
		t.Fatal(err)
	}
	e, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(e.Files()); got != 1 {
		t.Fatalf("loaded %d files (%v), want 1: hidden entries are skipped, links followed", got, e.Files())
	}
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", "package airlock\n\ndecision := {\"outcome\": \"allow\"}\n")
	e1 := mustLoad(t, dir)
	if len(e1.Version()) != 16 {
		t.Errorf("version %q, want 16 hex digits", e1.Version())
	}
	if e2 := mustLoad(t, dir); e2.Version() != e1.Version() {
		t.Errorf("same files, versions %s and %s", e1.Version(), e2.Version())
	}
	write(t, dir, "p_test.rego", "package airlock_test\n\ntest_x if true\n")
	if e3 := mustLoad(t, dir); e3.Version() != e1.Version() {
		t.Errorf("adding a test file changed the version")
	}
	write(t, dir, "p.rego", "package airlock\n\ndecision := {\"outcome\": \"deny\"}\n")
	e4 := mustLoad(t, dir)
	if e4.Version() == e1.Version() {
		t.Errorf("changing the policy kept version %s", e1.Version())
	}
	d, err := e4.Evaluate(context.Background(), &policy.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if d.PolicyVersion != e4.Version() {
		t.Errorf("decision version %q, engine version %q", d.PolicyVersion, e4.Version())
	}
}

func TestEvaluateUndefinedFailsClosed(t *testing.T) {
	dir := t.TempDir()
	// Defined only for tools/call: loadable, undefined for everything else.
	write(t, dir, "p.rego", `package airlock

decision := {"outcome": "allow"} if input.mcp.method == "tools/call"
`)
	e := mustLoad(t, dir)
	d, err := e.Evaluate(context.Background(), &policy.Input{MCP: policy.MessageInput{Method: "ping"}})
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Decision{Outcome: policy.OutcomeDeny, Reason: policy.ReasonNoDecision, Record: true, PolicyVersion: e.Version()}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
}

func TestEvaluateErrors(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		query  string
		want   []string
	}{
		{
			name: "conflicting values",
			policy: `package airlock

decision := {"outcome": "allow"} if input.mcp.method != ""
decision := {"outcome": "deny"} if input.mcp.tool != ""
`,
			want: []string{"policy eval", "{dir}/p.rego:4:1: eval_conflict_error", "conflicting values"},
		},
		{
			name: "built-in error is fatal, not undefined",
			policy: `package airlock

deny_reason := "bad" if glob.match("[", null, input.mcp.tool)
decision := {"outcome": "deny", "reason": deny_reason} if deny_reason
else := {"outcome": "allow"}
`,
			want: []string{"policy eval", "{dir}/p.rego:3:", "glob.match"},
		},
		{
			name: "several results",
			policy: `package airlock

decisions contains {"outcome": "allow"}
decisions contains {"outcome": "deny"}
`,
			query: "data.airlock.decisions[_]",
			want:  []string{"query produced 2 results, want one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "p.rego", tt.policy)
			e, err := Load(dir, tt.query)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Evaluate(context.Background(), &policy.Input{MCP: policy.MessageInput{Method: "tools/call", Tool: "x"}})
			if err == nil {
				t.Fatalf("got %+v, want an error", d)
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "{dir}", dir)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// Malformed raw JSON in a part of the input the policy reads is an error
// (the caller fails closed); parts it never reads are not converted.
func TestEvaluateBadInput(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", "package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": sprintf(\"%v %v %v\", [input.mcp.arguments, input.mcp.id, input.grants])}\n")
	e := mustLoad(t, dir)
	if _, err := e.Evaluate(context.Background(), nil); err == nil {
		t.Error("nil input: got no error")
	}
	for name, in := range map[string]*policy.Input{
		"arguments":       {MCP: policy.MessageInput{Arguments: json.RawMessage(`{"a":`)}},
		"id":              {MCP: policy.MessageInput{ID: json.RawMessage(`1 2`)}},
		"grant arguments": {Grants: []policy.GrantInput{{ID: "g1", Arguments: json.RawMessage(`nope`)}}},
	} {
		if _, err := e.Evaluate(context.Background(), in); err == nil || !strings.Contains(err.Error(), "policy input") {
			t.Errorf("%s: got %v, want a policy input error", name, err)
		}
	}
}

func TestEvaluateCancelled(t *testing.T) {
	dir := t.TempDir()
	// A policy slow enough that cancellation lands while it runs.
	write(t, dir, "p.rego", `package airlock

r := numbers.range(1, 20000)

# 4e8 small steps and no memory to speak of: cancellation lands mid-way.
decision := {"outcome": "allow"} if {
	count([1 | some x in r; some y in r; x * y == -1]) == 0
}
`)
	e := mustLoad(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err := e.Evaluate(ctx, &policy.Input{})
	if err == nil {
		t.Fatalf("got %+v, want a cancellation error", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("evaluation was not cancelled")
	}
}

func TestEvaluateUsesInputTimeAsClock(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", `package airlock

decision := {"outcome": "allow", "reason": sprintf("%d %d %s", [time.now_ns(), input.time.unix_ns, input.time.now])}
`)
	e := mustLoad(t, dir)
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600))
	d, err := e.Evaluate(context.Background(), &policy.Input{Time: at})
	if err != nil {
		t.Fatal(err)
	}
	want := "1772597167000000008 1772597167000000008 2026-03-04T04:06:07.000000008Z"
	if d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}

func mustLoad(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}
