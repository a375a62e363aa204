// Package config owns airlock.yaml: its shape, its defaults, parsing (unknown
// keys are errors) and validation. Every error names the file position and
// the field it is about, so an operator can go straight to the line.
//
// Every section's types live here, the parts that run them (grants,
// audit, notify, approvals, identity, mask) refer to them by alias, and
// config imports no other airlock package: reading airlock.yaml must not
// pull in OPA, gRPC or ClickHouse. Checks that need those parts (policy
// and masking profiles compile, credentials and TLS files load, Envoy's
// configuration renders) are serve.Check's; Locate gives its errors
// positions too.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Defaults returns the configuration airlock runs with when a field is not set.
func Defaults() Config {
	return Config{
		PublicURL: "http://127.0.0.1:10000",
		Listen: Listen{
			Authz: "127.0.0.1:9001",
			Proc:  "127.0.0.1:9002",
			XDS:   "127.0.0.1:18000",
			HTTP:  "127.0.0.1:8080",
		},
		Policy:        Policy{Dir: "policies", Query: "data.airlock.decision", ReloadInterval: 2 * time.Second},
		Masking:       Masking{MaxEventBytes: 1 << 20, MaxBodyBytes: DefaultMaxResponseBytes},
		Grants:        GrantsDefaults(),
		Audit:         auditDefaults(),
		Notifications: NotificationsDefaults(),
		Limits: Limits{
			MaxRequestBytes: DefaultMaxRequestBytes, MaxResponseBytes: DefaultMaxResponseBytes,
			MaxHeldCalls: DefaultMaxHeldCalls, MaxStreams: DefaultMaxStreams, TokenCacheSize: 10000,
			HeapTargetBytes: DefaultHeapTargetBytes,
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads airlock.yaml from r, applies defaults and validates it. name is
// used in error messages (usually the file path).
func Parse(r io.Reader, name string) (*Config, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cfg := Defaults()
	// The response limit has two names (limits.max_response_bytes and
	// its old masking.max_body_bytes): decoded unset, so applyDefaults
	// can tell which one the file sets.
	cfg.Limits.MaxResponseBytes, cfg.Masking.MaxBodyBytes = 0, 0
	dec := yaml.NewDecoder(bytes.NewReader(src), yaml.Strict())
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, src, err)
	}
	cfg.applyDefaults()
	cfg.resolvePaths(filepath.Dir(name))
	cfg.src = source{name: name, data: src}
	if err := cfg.Validate(); err != nil {
		return nil, cfg.Locate(err)
	}
	return &cfg, nil
}

// yamlError turns a go-yaml error into "file:line:col: message". Some
// decode errors (an unparsable duration) carry no position; for those the
// value quoted in the message is looked up in the document.
func yamlError(name string, src []byte, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		p := ye.GetToken().Position
		return fmt.Errorf("%s:%d:%d: %s", name, p.Line, p.Column, ye.GetMessage())
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		if v, qerr := strconv.Unquote(msg[i:]); qerr == nil {
			if file, perr := parser.ParseBytes(src, 0); perr == nil {
				if tk := findScalar(file, v); tk != nil {
					return fmt.Errorf("%s:%d:%d: %s", name, tk.Position.Line, tk.Position.Column, msg)
				}
			}
		}
	}
	return fmt.Errorf("%s: %s", name, msg)
}

// findScalar returns the token of the first scalar value equal to v.
func findScalar(file *ast.File, v string) *token.Token {
	var found *token.Token
	for _, doc := range file.Docs {
		ast.Walk(visitFunc(func(n ast.Node) bool {
			if found != nil {
				return false
			}
			if s, ok := n.(ast.ScalarNode); ok && fmt.Sprint(s.GetValue()) == v {
				found = n.GetToken()
				return false
			}
			return true
		}), doc)
	}
	return found
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

// FieldError is a validation failure of one field, addressed by its YAML path
// (e.g. targets[0].upstream).
type FieldError struct {
	Path    string
	Message string
	Line    int // filled in by Parse when the field is in the file
	Column  int
	File    string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Path, e.Message)
	}
	if e.File != "" {
		return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Message)
}

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Locate fills the file name and position of the field into every
// FieldError joined in err, when c came from Parse: checks made after
// parsing (serve.Check) point at the line as Validate's errors do.
// Other errors are returned as they are.
func (c *Config) Locate(err error) error {
	if err == nil || c.src.name == "" {
		return err
	}
	return locate(c.src.name, c.src.data, err)
}

// locate fills file positions into every FieldError joined in err.
func locate(name string, src []byte, err error) error {
	file, perr := parser.ParseBytes(src, 0)
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			continue
		}
		fe.File = name
		if perr != nil {
			continue
		}
		if n := nodeAt(file, fe.Path); n != nil {
			p := n.GetToken().Position
			fe.Line, fe.Column = p.Line, p.Column
		}
	}
	return errors.Join(errs...)
}

// nodeAt finds the node for path, falling back to the nearest parent that is
// in the file (a missing field points at the object that should hold it).
func nodeAt(file *ast.File, path string) ast.Node {
	for p := path; p != ""; p = parent(p) {
		yp, err := yaml.PathString("$." + p)
		if err != nil {
			continue
		}
		if n, err := yp.FilterFile(file); err == nil && n != nil {
			return n
		}
	}
	return nil
}

func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// resolvePaths makes relative file paths relative to the config file's
// directory, as operators expect when they run airlock from elsewhere.
func (c *Config) resolvePaths(base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.Policy.Dir = abs(c.Policy.Dir)
	c.Listen.TLS.resolvePaths(abs)
	c.Grants.Dir = abs(c.Grants.Dir)
	c.Audit.Spool.Dir = abs(c.Audit.Spool.Dir)
	c.DecisionLog.Path = abs(c.DecisionLog.Path)
	c.Audit.Embedded.Dir = abs(c.Audit.Embedded.Dir)
	for i := range c.Targets {
		c.Targets[i].Credential.File = abs(c.Targets[i].Credential.File)
	}
}

// auditDefaults keeps airlock's state next to its config by default (like
// grants.dir), so a first run needs no writable /var/lib.
func auditDefaults() Audit {
	a := AuditDefaults()
	a.Spool.Dir = "data/audit-spool"
	a.Embedded.Dir = "data/audit"
	return a
}
