package rego

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// RegoTestResult is the outcome of one Rego test rule (test_*).
type RegoTestResult struct {
	Name     string // package.rule, e.g. data.airlock_test.test_allowed_tool
	Location string // file:line:col of the rule
	Passed   bool
	Skipped  bool   // todo_test_* rules
	Message  string // why it failed: the failing expression or the error
	Output   string // print() output of the test
	Duration time.Duration
}

// RunRegoTests runs every Rego unit test under dir (the policy files and
// their *_test.rego files, loaded as Load does) and returns one result per
// test rule, sorted by location. A load or compile error is returned as an
// error; failing tests are not errors, check Passed.
func RunRegoTests(ctx context.Context, dir string) ([]RegoTestResult, error) {
	snap, err := readSnapshot(dir, true)
	if err != nil {
		return nil, err
	}
	if err := snap.checkJSON(); err != nil {
		return nil, snap.policyError("load", err)
	}
	results, err := runTests(ctx, snap, "", false)
	if err != nil {
		return nil, err
	}
	// Tracing makes the run many times slower, so only failed tests are
	// run again with it, to find the expression that failed.
	var failed []string
	for _, r := range results {
		if r.Fail {
			failed = append(failed, regexp.QuoteMeta(r.Package+"."+r.Name))
		}
	}
	traced := map[string]*tester.Result{}
	if len(failed) > 0 {
		again, err := runTests(ctx, snap, "^("+strings.Join(failed, "|")+")$", true)
		if err != nil {
			return nil, err
		}
		for _, r := range again {
			traced[r.Package+"."+r.Name] = r
		}
	}
	out := make([]RegoTestResult, 0, len(results))
	for _, r := range results {
		tr := RegoTestResult{
			Name:     r.Package + "." + r.Name,
			Passed:   r.Pass(),
			Skipped:  r.Skip,
			Output:   string(r.Output),
			Duration: r.Duration,
		}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d:%d", snap.path(r.Location.File), r.Location.Row, r.Location.Col)
		}
		switch {
		case r.Error != nil:
			var problems []string
			snap.flatten(r.Error, &problems)
			tr.Message = strings.Join(problems, "; ")
		case r.Fail:
			tr.Message = "test rule was false or undefined"
			if e := failedExpr(traced[r.Package+"."+r.Name]); e != nil {
				text := string(e.Location.Text)
				if text == "" {
					text = e.String()
				}
				tr.Message = fmt.Sprintf("failed at %s:%d:%d: %s", snap.path(e.Location.File), e.Location.Row, e.Location.Col, text)
			}
		}
		out = append(out, tr)
	}
	return out, nil
}

// runTests loads the snapshot with its tests and runs the Rego tests whose
// full names match filter (all when empty), sorted by location.
func runTests(ctx context.Context, snap *snapshot, filter string, trace bool) ([]*tester.Result, error) {
	res, err := loader.NewFileLoader().
		WithFS(snap.fs(true)).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		All([]string{"."})
	if err != nil {
		return nil, snap.policyError("load", err)
	}
	store := inmem.NewFromObjectWithOpts(res.Documents, inmem.OptRoundTripOnWrite(false))
	ch, err := tester.NewRunner().
		SetStore(store).
		SetModules(res.ParsedModules()).
		CapturePrintOutput(true).
		RaiseBuiltinErrors(true).
		EnableTracing(trace).
		Filter(filter).
		SetTimeout(time.Minute).
		RunTests(ctx, nil)
	if err != nil {
		return nil, snap.policyError("compile", err)
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	slices.SortFunc(results, func(a, b *tester.Result) int {
		return cmp.Or(a.Location.Compare(b.Location), strings.Compare(a.Name, b.Name))
	})
	return results, nil
}

// failedExpr is the last expression of the test's own file that failed,
// found in the evaluation trace: the check that made the test false.
func failedExpr(r *tester.Result) *ast.Expr {
	if r == nil || r.Location == nil {
		return nil
	}
	for i := len(r.Trace) - 1; i >= 0; i-- {
		ev := r.Trace[i]
		if ev.Op != topdown.FailOp {
			continue
		}
		e, ok := ev.Node.(*ast.Expr)
		if ok && e.Location != nil && e.Location.File == r.Location.File {
			return e
		}
	}
	return nil
}

// String is a one-line summary: PASS/FAIL/SKIP, the name, the location and
// the failure message.
func (r RegoTestResult) String() string {
	status := "PASS"
	switch {
	case r.Skipped:
		status = "SKIP"
	case !r.Passed:
		status = "FAIL"
	}
	s := fmt.Sprintf("%s %s (%s)", status, r.Name, r.Location)
	if r.Message != "" {
		s += ": " + r.Message
	}
	return s
}
