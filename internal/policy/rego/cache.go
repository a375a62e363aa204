package rego

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// Decision cache.
//
// Rego evaluation dominates the cost of a check (tens to hundreds of
// microseconds for the shipped policy), yet agents repeat the same calls
// with the same token all day. An Engine therefore remembers decisions,
// keyed by a SHA-256 of exactly the parts of the input its policy reads:
// at load, the compiled modules are walked for every reference into
// `input` (input.principal.subject, input.mcp.tool, …), and the key covers
// those fields and nothing else (a fresh x-request-id does not defeat the
// cache unless the policy reads request headers).
//
// The cache is exact, never stale: it is off for a policy that reads
// input.time or the whole input, or calls a non-deterministic built-in
// (time.now_ns, http.send, rand.intn, …), because such a decision can
// change with nothing in the key changing. Each Engine has its own cache,
// so a policy reload starts empty. Errors are never cached.

// inputDeps records which parts of the input a policy reads.
type inputDeps struct {
	off    string                     // why caching is off ("" = on)
	all    bool                       // the policy may read any part of the input
	whole  map[string]bool            // top-level keys read as a whole, e.g. "grants"
	fields map[string]map[string]bool // top-level key → second-level keys read

	planOnce sync.Once // plan is filled from the above on the first key
	plan     keyPlan
}

// reachable keeps the modules the query can reach through data references
// (by package), so an example policy loaded beside the default one does not
// turn the default one's cache off. Any query that is not a plain data
// reference reaches everything.
func reachable(modules map[string]*ast.Module, query ast.Body) map[string]*ast.Module {
	var start ast.Ref
	if len(query) == 1 {
		if t, ok := query[0].Terms.(*ast.Term); ok {
			start, _ = t.Value.(ast.Ref)
		}
	}
	if start == nil {
		return modules
	}
	touches := func(r ast.Ref, m *ast.Module) bool {
		g := r.GroundPrefix()
		return g.HasPrefix(m.Package.Path) || m.Package.Path.HasPrefix(g)
	}
	out := map[string]*ast.Module{}
	frontier := []ast.Ref{start}
	for len(frontier) > 0 {
		r := frontier[0]
		frontier = frontier[1:]
		for _, name := range sortedKeys(modules) {
			m := modules[name]
			if _, seen := out[name]; seen || !touches(r, m) {
				continue
			}
			out[name] = m
			for _, rule := range m.Rules { // not the package clause: it names itself
				ast.WalkRefs(rule, func(x ast.Ref) bool {
					if x.HasPrefix(ast.DefaultRootRef) {
						frontier = append(frontier, x)
					}
					return false
				})
			}
			for _, imp := range m.Imports {
				if x, ok := imp.Path.Value.(ast.Ref); ok && x.HasPrefix(ast.DefaultRootRef) {
					frontier = append(frontier, x)
				}
			}
		}
	}
	return out
}

// analyzeDeps reads the parsed (not compiled) modules: compilation
// rewrites input into local variables, hiding which fields are read.
// Rules inside a package refer to each other without the data. prefix, so
// every module of a reached package is analyzed whole.
func analyzeDeps(modules map[string]*ast.Module) *inputDeps {
	d := &inputDeps{whole: map[string]bool{}, fields: map[string]map[string]bool{}}
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch v := x.(type) {
		case *ast.Expr:
			if terms, ok := v.Terms.([]*ast.Term); ok {
				d.checkBuiltin(terms[0], v.Location)
				return d.objectGet(terms, vis)
			}
		case ast.Call:
			d.checkBuiltin(v[0], v[0].Location)
			return d.objectGet(v, vis)
		case ast.Ref:
			if v.HasPrefix(ast.InputRootRef) {
				d.addRef(v)
			}
		}
		return false
	})
	for _, name := range sortedKeys(modules) {
		m := modules[name]
		for _, imp := range m.Imports {
			// import input.principal as p: everything under it may be read.
			if r, ok := imp.Path.Value.(ast.Ref); ok && r.HasPrefix(ast.InputRootRef) {
				d.addRef(r)
			}
		}
		vis.Walk(m)
	}
	return d
}

func (d *inputDeps) checkBuiltin(op *ast.Term, _ *ast.Location) {
	name := op.String()
	if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic && d.off == "" {
		d.off = fmt.Sprintf("the policy calls the non-deterministic built-in %s (%s)", name, where(op))
	}
}

func where(t *ast.Term) string {
	if t == nil || t.Location == nil {
		return "position unknown"
	}
	return fmt.Sprintf("%s:%d", t.Location.File, t.Location.Row)
}

// objectGet treats object.get(input..., ["a", "b"], default) as the
// reference input...a.b, so the common defensive idiom keeps a policy
// cacheable. It walks the other arguments itself and reports whether it
// did (so the visitor does not descend again).
func (d *inputDeps) objectGet(terms []*ast.Term, vis *ast.GenericVisitor) bool {
	// Compiled expressions carry the output variable as a fifth term.
	if (len(terms) != 4 && len(terms) != 5) || terms[0].String() != "object.get" {
		return false
	}
	base, ok := terms[1].Value.(ast.Ref)
	if !ok || !base.HasPrefix(ast.InputRootRef) {
		return false
	}
	path := base.Copy()
	switch k := terms[2].Value.(type) {
	case ast.String:
		path = append(path, ast.NewTerm(k))
	case *ast.Array:
		for i := 0; i < k.Len(); i++ {
			if _, ok := k.Elem(i).Value.(ast.String); !ok {
				return false
			}
			path = append(path, k.Elem(i))
		}
	default:
		return false
	}
	path[0] = ast.NewTerm(path[0].Value).SetLocation(terms[0].Location)
	d.addRef(path)
	for _, t := range terms[3:] {
		vis.Walk(t)
	}
	return true
}

func (d *inputDeps) addRef(r ast.Ref) {
	if d.all {
		return
	}
	if len(r) < 2 {
		d.all = true
		d.off = fmt.Sprintf("the policy reads the whole input (%s)", where(r[0]))
		return
	}
	top, ok := r[1].Value.(ast.String)
	if !ok {
		d.all = true
		d.off = fmt.Sprintf("the policy reads input[%v] with a computed key (%s)", r[1], where(r[0]))
		return
	}
	if top == "time" && d.off == "" {
		d.off = fmt.Sprintf("the policy reads input.time (%s)", where(r[0]))
	}
	if len(r) < 3 {
		d.whole[string(top)] = true
		return
	}
	field, ok := r[2].Value.(ast.String)
	if !ok {
		d.whole[string(top)] = true
		return
	}
	if d.fields[string(top)] == nil {
		d.fields[string(top)] = map[string]bool{}
	}
	d.fields[string(top)][string(field)] = true
}

// reads says whether the policy may read input.<top>.<field>.
func (d *inputDeps) reads(top, field string) bool {
	return d == nil || d.all || d.whole[top] || d.fields[top][field]
}

// readsAny says whether the policy may read any part of input.<top> or,
// when fields are given, any of input.<top>.<field>.
func (d *inputDeps) readsAny(top string, fields ...string) bool {
	if len(fields) == 0 {
		return d == nil || d.all || d.whole[top] || len(d.fields[top]) > 0
	}
	for _, f := range fields {
		if d.reads(top, f) {
			return true
		}
	}
	return false
}

// keyPlan is which parts of the input key hashes: reads and readsAny
// answered once per policy instead of with map lookups on every Check.
type keyPlan struct {
	principal                                                  bool
	pIssuer, pSubject, pUser, pClientID, pScopes, pGroups      bool
	pAudience, pExpiry, pTokenID, pClaims                      bool
	mcp, mMethod, mKind, mID, mTool, mPrompt, mURI, mArguments bool
	mProtocolVersion, mSessionID, mBatch, mName                bool
	request, rMethod, rPath, rHost, rHeaders, grants           bool
}

func (d *inputDeps) keyPlan() *keyPlan {
	d.planOnce.Do(func() {
		p := func(f string) bool { return d.reads("principal", f) }
		m := func(f string) bool { return d.reads("mcp", f) }
		r := func(f string) bool { return d.reads("request", f) }
		d.plan = keyPlan{
			principal: d.readsAny("principal"),
			pIssuer:   p("issuer"), pSubject: p("subject"), pUser: p("user"), pClientID: p("client_id"),
			pScopes: p("scopes"), pGroups: p("groups"), pAudience: p("audience"), pExpiry: p("expiry"),
			pTokenID: p("token_id"), pClaims: p("claims"),
			mcp:     d.readsAny("mcp"),
			mMethod: m("method"), mKind: m("kind"), mID: m("id"), mTool: m("tool"), mPrompt: m("prompt"), mURI: m("uri"),
			mArguments: m("arguments"), mProtocolVersion: m("protocol_version"), mSessionID: m("session_id"), mBatch: m("batch"),
			mName:   d.readsAny("mcp", nameFields...),
			request: d.readsAny("request"),
			rMethod: r("method"), rPath: r("path"), rHost: r("host"), rHeaders: r("headers"),
			grants: d.readsAny("grants"),
		}
	})
	return &d.plan
}

// key hashes the parts of in that the policy reads.
func (d *inputDeps) key(in *policy.Input) ([32]byte, error) {
	k := d.keyPlan()
	b := keyBufs.Get().(*[]byte)
	buf := (*b)[:0]
	str := func(tag byte, s string) {
		buf = append(buf, tag)
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	strs := func(tag byte, ss []string) {
		buf = append(buf, tag)
		buf = binary.AppendUvarint(buf, uint64(len(ss)))
		for _, s := range ss {
			str(0, s)
		}
	}
	raw := func(tag byte, r json.RawMessage) { str(tag, string(r)) }

	if k.principal {
		if p := in.Principal; p == nil {
			buf = append(buf, 'P', 0)
		} else {
			buf = append(buf, 'P', 1)
			if k.pIssuer {
				str('i', p.Issuer)
			}
			if k.pSubject {
				str('s', p.Subject)
			}
			if k.pUser {
				str('u', p.User)
			}
			if k.pClientID {
				str('c', p.ClientID)
			}
			if k.pScopes {
				strs('o', p.Scopes)
			}
			if k.pGroups {
				strs('g', p.Groups)
			}
			if k.pAudience {
				strs('a', p.Audience)
			}
			if k.pExpiry {
				str('e', p.Expiry.UTC().String())
			}
			if k.pTokenID {
				str('j', p.TokenID)
			}
			if k.pClaims {
				cj, err := json.Marshal(p.Claims) // map keys sorted: canonical
				if err != nil {
					return [32]byte{}, err
				}
				raw('C', cj)
			}
		}
	}
	// The target is named by config: its name determines the rest.
	str('T', in.Target.Name)
	if k.mcp {
		m := &in.MCP
		buf = append(buf, 'M')
		if k.mMethod {
			str('m', m.Method)
		}
		if k.mKind {
			str('k', m.Kind)
		}
		if k.mID {
			raw('d', m.ID)
		}
		if k.mTool {
			str('t', m.Tool)
		}
		if k.mPrompt {
			str('p', m.Prompt)
		}
		if k.mURI {
			str('u', m.URI)
		}
		if k.mArguments {
			raw('a', m.Arguments)
		}
		if k.mProtocolVersion {
			str('v', m.ProtocolVersion)
		}
		if k.mSessionID {
			str('s', m.SessionID)
		}
		if k.mBatch && m.Batch {
			buf = append(buf, 'b')
		}
		if k.mName {
			// name_normalized, name_words and name_suspicious are functions
			// of the name and of whether it is a URI.
			name, uri := m.ItemName()
			if uri {
				buf = append(buf, 'U')
			}
			str('n', name)
		}
	}
	if k.request {
		r := &in.Request
		buf = append(buf, 'R')
		if k.rMethod {
			str('m', r.Method)
		}
		if k.rPath {
			str('p', r.Path)
		}
		if k.rHost {
			str('h', r.Host)
		}
		if k.rHeaders {
			names := make([]string, 0, len(r.Headers))
			for k := range r.Headers {
				if !credentialHeaders[strings.ToLower(k)] && !strings.HasPrefix(k, ":") {
					names = append(names, k)
				}
			}
			slices.Sort(names)
			buf = append(buf, 'H')
			for _, k := range names {
				str(0, k)
				str(1, r.Headers[k])
			}
		}
	}
	if k.grants {
		buf = append(buf, 'G')
		buf = binary.AppendUvarint(buf, uint64(len(in.Grants)))
		for i := range in.Grants {
			g := &in.Grants[i]
			str('i', g.ID)
			str('t', g.Target)
			str('o', g.Tool)
			str('r', g.Resource)
			raw('a', g.Arguments)
			if g.SingleUse {
				buf = append(buf, 's')
			}
			str('e', g.Expiry.UTC().String())
			str('p', g.Principal)
		}
	}
	sum := sha256.Sum256(buf)
	*b = buf
	keyBufs.Put(b)
	return sum, nil
}

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// decisionCache is a bounded, sharded map with random eviction (Go's map
// iteration order), which is cheap and good enough for a hot set of
// repeated calls.
type decisionCache struct {
	shards       [16]cacheShard
	perShard     int
	hits, misses atomic.Uint64
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]policy.Decision
}

// DefaultCacheSize is the number of decisions an Engine remembers.
const DefaultCacheSize = 10000

func newDecisionCache(size int) *decisionCache {
	c := &decisionCache{perShard: max(1, size/16)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]policy.Decision)
	}
	return c
}

func (c *decisionCache) get(k [32]byte) (policy.Decision, bool) {
	s := &c.shards[k[0]&15]
	s.mu.RLock()
	d, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return d, ok
}

func (c *decisionCache) put(k [32]byte, d policy.Decision) {
	s := &c.shards[k[0]&15]
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = d
	s.mu.Unlock()
}

// CacheStats reports the decision cache of an engine.
type CacheStats struct {
	Enabled      bool
	Reason       string // why it is off
	Hits, Misses uint64
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
