package rego

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/format"
)

// shippedPolicies is the repository's policies/ directory.
const shippedPolicies = "../../../policies"

// TestShippedRegoTests runs every Rego unit test under policies/ and fails,
// naming each failing test, if any does not pass.
func TestShippedRegoTests(t *testing.T) {
	results, err := RunRegoTests(context.Background(), shippedPolicies)
	if err != nil {
		t.Fatalf("RunRegoTests: %v", err)
	}
	// The default policy's tests alone are more than this; a much smaller
	// number means test files stopped being found.
	if len(results) < 40 {
		t.Fatalf("ran %d Rego tests, want at least 40", len(results))
	}
	packages := map[string]int{}
	for _, r := range results {
		packages[r.Name[:strings.LastIndex(r.Name, ".")]]++
		if !r.Passed {
			t.Errorf("%s", r)
			if r.Output != "" {
				t.Logf("output of %s:\n%s", r.Name, r.Output)
			}
		}
	}
	for _, pkg := range []string{
		"data.airlock_test",
		"data.airlock.examples.readonly_test",
		"data.airlock.examples.business_hours_test",
		"data.airlock.examples.group_scoped_test",
	} {
		if packages[pkg] == 0 {
			t.Errorf("no Rego tests ran in package %s", pkg)
		}
	}
	t.Logf("%d Rego tests in %d packages", len(results), len(packages))
}

// TestShippedRegoIsFormatted keeps policies/ in opa fmt style.
func TestShippedRegoIsFormatted(t *testing.T) {
	n := 0
	err := filepath.WalkDir(shippedPolicies, func(p string, d fs.DirEntry, err error) error {
		if err != nil || filepath.Ext(p) != ".rego" {
			return err
		}
		n++
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		want, err := format.Source(p, src)
		if err != nil {
			return err
		}
		if !bytes.Equal(src, want) {
			t.Errorf("%s is not formatted as opa fmt would; formatted:\n%s", p, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 8 {
		t.Errorf("checked %d .rego files, want at least 8", n)
	}
}

// TestRunRegoTestsReportsFailures checks that a failing and an erroring
// Rego test are reported as not passed, with where and why.
func TestRunRegoTestsReportsFailures(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p/p.rego", "package p\n\nx := 1\n\nf(a) := a / 0\n")
	write(t, dir, "p/p_test.rego", `package p_test

import data.p

test_ok if p.x == 1

test_fails if p.x == 2

test_errors if p.f(1) == 1
`)
	results, err := RunRegoTests(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]RegoTestResult{}
	for _, r := range results {
		got[r.Name] = r
	}
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3: %v", len(got), results)
	}
	if r := got["data.p_test.test_ok"]; !r.Passed {
		t.Errorf("test_ok: %v", r)
	}
	r := got["data.p_test.test_fails"]
	if r.Passed || !strings.Contains(r.Message, "p_test.rego:7:") || !strings.Contains(r.Location, filepath.Join(dir, "p", "p_test.rego")+":7:") {
		t.Errorf("test_fails: got %v, want a failure at p_test.rego:7", r)
	}
	r = got["data.p_test.test_errors"]
	if r.Passed || !strings.Contains(r.Message, "divide by zero") {
		t.Errorf("test_errors: got %v, want a divide by zero error", r)
	}
	if s := r.String(); !strings.HasPrefix(s, "FAIL data.p_test.test_errors (") {
		t.Errorf("String() = %q", s)
	}
}

func TestRunRegoTestsLoadError(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p_test.rego", "package p_test\n\ntest_x if {\n")
	_, err := RunRegoTests(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "p_test.rego")+":") {
		t.Fatalf("got %v, want an error naming p_test.rego", err)
	}
}

// write creates dir/name with content, making parent directories. The
// file appears at once (written to a hidden temporary file, then renamed),
// so a polling watcher never sees it half written.
func write(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		t.Fatal(err)
	}
}
