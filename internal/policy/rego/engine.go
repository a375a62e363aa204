// Package rego is airlock's policy engine: OPA Rego behind the vocabulary
// of internal/policy. It loads and compiles a directory of Rego and data
// files into an Engine, builds the input document straight into OPA's AST,
// evaluates a prepared query on the hot path with an exact decision cache,
// converts the result strictly (anything malformed is an error, so callers
// fail closed), hot reloads while keeping the last good policy (Store), and
// runs the Rego unit tests shipped beside a policy.
//
// Only code that builds an engine imports this package; everything that
// decides through one takes a policy.Evaluator, so it does not compile OPA.
package rego

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/metrics"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// Engine and Store are the policy.Evaluator callers are given.
var (
	_ policy.Evaluator = (*Engine)(nil)
	_ policy.Evaluator = (*Store)(nil)
)

// DefaultQuery is the decision the gateway asks for.
const DefaultQuery = "data.airlock.decision"

// Engine is one compiled policy directory with its query prepared. It is
// immutable and safe for concurrent use.
type Engine struct {
	dir      string
	query    string
	version  string
	files    []string
	loadedAt time.Time
	snap     *snapshot
	pq       oparego.PreparedEvalQuery
	deps     *inputDeps
	cache    *decisionCache // nil when the policy is not cacheable
}

// Load reads every .rego, .json and .yaml/.yml file under dir (OPA loader
// semantics: data files are merged under data.<their directory path>),
// leaving out *_test.rego and hidden entries, compiles the modules once and
// prepares query (DefaultQuery when empty). The query must refer to a rule
// or document the policy defines. Errors are *PolicyError values whose
// problems name file:line:col.
func Load(dir, query string) (*Engine, error) {
	if query == "" {
		query = DefaultQuery
	}
	snap, err := readSnapshot(dir, false)
	if err != nil {
		return nil, err
	}
	compiler, parsed, docs, err := snap.compile(false)
	if err != nil {
		return nil, err
	}
	body, err := ast.ParseBody(query)
	if err != nil {
		return nil, snap.policyError("query", fmt.Errorf("query %q: %w", query, err))
	}
	if len(body) != 1 {
		return nil, &policy.PolicyError{Op: "query", Dir: dir, Problems: []string{fmt.Sprintf("query %q has %d expressions, want one (such as data.airlock.decision)", query, len(body))}}
	}
	if err := checkQueryDefined(compiler, docs, body, query); err != nil {
		return nil, &policy.PolicyError{Op: "query", Dir: dir, Problems: []string{err.Error()}}
	}
	store := inmem.NewFromObjectWithOpts(docs,
		inmem.OptRoundTripOnWrite(false),
		inmem.OptReturnASTValuesOnRead(true))
	pq, err := oparego.New(
		oparego.ParsedQuery(body),
		oparego.Compiler(compiler),
		oparego.Store(store),
		oparego.GenerateJSON(keepTerm),
		// A built-in that fails (a bad glob, a bad time zone) is an error,
		// not an undefined expression that could skip a deny rule.
		oparego.StrictBuiltinErrors(true),
	).PrepareForEval(context.Background())
	if err != nil {
		return nil, snap.policyError("query", err)
	}
	var files []string
	for _, n := range snap.names() {
		files = append(files, snap.path(n))
	}
	e := &Engine{
		dir:      dir,
		query:    query,
		version:  snap.hash,
		files:    files,
		loadedAt: time.Now(),
		snap:     snap,
		pq:       pq,
	}
	e.deps = analyzeDeps(reachable(parsed, body))
	if e.deps.off == "" {
		e.cache = newDecisionCache(DefaultCacheSize)
	}
	return e, nil
}

// CacheStats says whether decisions are cached and how well.
func (e *Engine) CacheStats() CacheStats {
	if e.cache == nil {
		return CacheStats{Reason: e.deps.off}
	}
	return CacheStats{Enabled: true, Hits: e.cache.hits.Load(), Misses: e.cache.misses.Load()}
}

// compile loads the snapshot with OPA's loader and compiles its modules.
// It returns the compiler and the merged data documents.
func (s *snapshot) compile(tests bool) (*ast.Compiler, map[string]*ast.Module, map[string]any, error) {
	if err := s.checkJSON(); err != nil {
		return nil, nil, nil, s.policyError("load", err)
	}
	res, err := loader.NewFileLoader().
		WithFS(s.fs(tests)).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		All([]string{"."})
	if err != nil {
		return nil, nil, nil, s.policyError("load", err)
	}
	if len(res.Modules) == 0 {
		return nil, nil, nil, &policy.PolicyError{Op: "load", Dir: s.dir, Problems: []string{"no .rego files found"}}
	}
	parsed := res.ParsedModules()
	compiler := ast.NewCompiler().WithEnablePrintStatements(false)
	compiler.Compile(parsed)
	if compiler.Failed() {
		return nil, nil, nil, s.policyError("compile", compiler.Errors)
	}
	return compiler, parsed, res.Documents, nil
}

// checkQueryDefined fails when a plain reference query (data.x.y) names
// neither a rule nor a data document, which is almost always a typo in the
// package or rule name.
func checkQueryDefined(c *ast.Compiler, docs map[string]any, body ast.Body, query string) error {
	term, ok := body[0].Terms.(*ast.Term)
	if !ok {
		return nil
	}
	ref, ok := term.Value.(ast.Ref)
	if !ok || !ref.HasPrefix(ast.DefaultRootRef) || !ref.IsGround() {
		return nil
	}
	if len(c.GetRules(ref)) > 0 || len(c.GetRulesWithPrefix(ref)) > 0 {
		return nil
	}
	var node any = docs
	for _, t := range ref[1:] {
		key, ok := t.Value.(ast.String)
		m, isMap := node.(map[string]any)
		if !ok || !isMap {
			return fmt.Errorf("query %q names no rule or data document in the policy", query)
		}
		if node, ok = m[string(key)]; !ok {
			return fmt.Errorf("query %q names no rule or data document in the policy", query)
		}
	}
	return nil
}

// noMetrics spares every evaluation the timers OPA would otherwise start
// (it allocates a fresh metrics set per Eval when none is given).
var noMetrics = metrics.NoOp()

// keepTerm makes the prepared query hand back result terms as they are,
// so decisions are decoded from the AST without a generic conversion.
func keepTerm(t *ast.Term, _ *oparego.EvalContext) (any, error) { return t, nil }

// Version is a hash of the loaded (non-test) files' names and contents.
func (e *Engine) Version() string { return e.version }

// Dir is the policy directory the engine was loaded from.
func (e *Engine) Dir() string { return e.dir }

// Query is the prepared decision query.
func (e *Engine) Query() string { return e.query }

// Files are the paths of the files loaded, sorted.
func (e *Engine) Files() []string { return append([]string(nil), e.files...) }

// LoadedAt is when the engine was built.
func (e *Engine) LoadedAt() time.Time { return e.loadedAt }

// Evaluate runs the decision query for in. Any evaluation error, and any
// result that is not a well-formed decision, is returned as an error: the
// caller must deny. An undefined result is a deny with ReasonNoDecision.
// The returned decision carries the engine's PolicyVersion.
func (e *Engine) Evaluate(ctx context.Context, in *policy.Input) (policy.Decision, error) {
	if in == nil {
		return policy.Decision{}, errors.New("policy input: nil")
	}
	var key [32]byte
	if e.cache != nil {
		var err error
		if key, err = e.deps.key(in); err != nil {
			return policy.Decision{}, fmt.Errorf("policy input: %w", err)
		}
		if d, ok := e.cache.get(key); ok {
			return d, nil
		}
	}
	now := in.Time
	if now.IsZero() {
		now = time.Now()
	}
	v, err := inputValue(in, now, e.deps)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("policy input: %w", err)
	}
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	rs, err := e.pq.Eval(ctx,
		oparego.EvalParsedInput(v),
		oparego.EvalTime(now),
		oparego.EvalMetrics(noMetrics),
		oparego.EvalExternalCancel(cancel))
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return policy.Decision{}, fmt.Errorf("policy eval: %w", ctx.Err())
		}
		return policy.Decision{}, e.snap.policyError("eval", err)
	}
	d, err := e.decode(rs)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("policy %s (version %s): %w", e.query, e.version, err)
	}
	d.PolicyVersion = e.version
	if e.cache != nil {
		e.cache.put(key, d)
	}
	return d, nil
}

func (e *Engine) decode(rs oparego.ResultSet) (policy.Decision, error) {
	switch len(rs) {
	case 0:
		return policy.Decision{Outcome: policy.OutcomeDeny, Reason: policy.ReasonNoDecision, Record: true}, nil
	case 1:
	default:
		return policy.Decision{}, fmt.Errorf("query produced %d results, want one", len(rs))
	}
	if len(rs[0].Expressions) != 1 {
		return policy.Decision{}, fmt.Errorf("query produced %d expressions, want one", len(rs[0].Expressions))
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return policy.Decision{}, errors.New("query result is not a term")
	}
	return decodeDecision(t.Value)
}
