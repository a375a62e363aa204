package mask

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/airlock-mcp/airlock/internal/config"
)

// ProfileConfig is a masking profile as configuration holds it
// (masking.profiles in airlock.yaml, defined in package config). A
// profile starts from the profile named in Extends (a built-in:
// "default", "strict", "off"; in a Set also any profile listed before
// it), turns on Detectors, turns off DisableDetectors, and adds Keys,
// Paths and Patterns. PatternConfig is one of its Patterns.
type (
	ProfileConfig = config.MaskingProfile
	PatternConfig = config.MaskingPattern
)

// Profile is a compiled masking profile, safe for concurrent use.
type Profile struct {
	name     string
	det      detector
	trig     [256]uint8 // text triggers (see text.go)
	keys     keySet
	paths    []pathRule
	patterns []pattern
	cfg      ProfileConfig
	known    map[string]bool // every mask type the profile writes
	maxType  int             // the longest of them
	numZero  bool            // number_mask: zero (masked JSON numbers become 0)
}

type pattern struct {
	typ string
	re  *regexp.Regexp
}

// Name is the profile's name.
func (p *Profile) Name() string { return p.name }

// Config returns the profile as configuration, with Extends resolved: the
// detectors, keys, paths and patterns it ends up with.
func (p *Profile) Config() ProfileConfig {
	c := p.cfg
	c.Detectors = slices.Clone(c.Detectors)
	c.Keys = slices.Clone(c.Keys)
	c.ExceptKeys = slices.Clone(c.ExceptKeys)
	c.Paths = slices.Clone(c.Paths)
	c.Patterns = slices.Clone(c.Patterns)
	return c
}

// Off reports whether the profile masks nothing (MaskJSON then only
// validates).
func (p *Profile) Off() bool {
	return p.det == 0 && p.keys.empty() && len(p.paths) == 0 && len(p.patterns) == 0
}

// defaultKeys are the names whose values the default profile masks: JSON
// members at any depth, and NAME=value, NAME: value, --NAME value in text.
// A rule matches a name that ends with it at a word start (see keys.go):
// "password" covers DB_PASSWORD, dbPassword, PGPASSWORD, smtp.password.
// "session" alone is not one: it names ids an agent echoes back, objects
// and packages (express-session) more often than secrets; session_token,
// session_key, session_secret and session cookies are covered.
var defaultKeys = []string{
	"password", "passwd", "pwd", "pass", "passphrase",
	"secret", "client_secret", "secret_key", "private_key",
	"api_key", "apikey", "x_api_key", "access_key",
	"token", "access_token", "refresh_token", "id_token", "auth_token", "session_token",
	"auth", "authorization", "proxy_authorization", "credential", "credentials",
	"session_key", "cookie", "set_cookie", "dsn", "connection_string", "conn_str",
	"secret_access_key", "aws_secret_access_key", "aws_session_token",
	"card_number", "cvv", "cvc",
}

// defaultExceptKeys are names that end with a rule of defaultKeys and
// are not secrets: pagination cursors an agent must send back, tokenizer
// settings, the shell's working directory. "=name" matches the whole name
// only (MYSQL_PWD is a password, PWD a directory).
var defaultExceptKeys = []string{
	"page_token", "next_token", "continuation_token", "sync_token", "pagination_token",
	"progress_token", // MCP's _meta.progressToken: progress notifications are matched by it
	"resume_token", "cursor_token", "start_token",
	"bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token", "mask_token",
	"=pwd", "=oldpwd",
	"=pass",           // "--- PASS: TestX" in test output; DB_PASS, ssh_pass stay rules
	"=aws_access_key", // the id (its own detector masks it), or a count of its masks
	"=auth0",          // the identity provider (its domain, a flag), not auth numbered 0
}

// strictKeys are added by the strict profile.
var strictKeys = []string{
	"ssn", "social_security_number", "date_of_birth", "passport_number", "iban", "tax_id",
}

// Built-in profile names.
const (
	DefaultProfile = "default"
	StrictProfile  = "strict"
	OffProfile     = "off"
)

// BuiltinConfigs returns the built-in profiles as configuration:
// "default" (every detector but email and phone, defaultKeys but
// defaultExceptKeys), "strict" (every detector, more keys) and "off"
// (nothing).
func BuiltinConfigs() []ProfileConfig {
	return []ProfileConfig{
		{Name: DefaultProfile, Detectors: []string{"all"}, DisableDetectors: []string{"email", "phone"},
			Keys: slices.Clone(defaultKeys), ExceptKeys: slices.Clone(defaultExceptKeys)},
		{Name: StrictProfile, Detectors: []string{"all"}, Keys: append(slices.Clone(defaultKeys), strictKeys...),
			ExceptKeys: slices.Clone(defaultExceptKeys)},
		{Name: OffProfile},
	}
}

var builtins = func() map[string]*Profile {
	m := make(map[string]*Profile)
	for _, c := range BuiltinConfigs() {
		p, err := compile(c, func(string) (*Profile, bool) { return nil, false })
		if err != nil {
			panic("mask: built-in profile " + c.Name + ": " + err.Error())
		}
		m[c.Name] = p
	}
	return m
}()

// Builtin returns the built-in profile of that name.
func Builtin(name string) (*Profile, bool) {
	p, ok := builtins[name]
	return p, ok
}

// Default is the built-in "default" profile.
func Default() *Profile { return builtins[DefaultProfile] }

// Compile checks a profile and compiles it; Extends may name a built-in.
// The error lists every problem, each naming the field and entry.
func Compile(c ProfileConfig) (*Profile, error) {
	return compile(c, Builtin)
}

var (
	profileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	patternTypeRE = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)
)

func compile(c ProfileConfig, lookup func(string) (*Profile, bool)) (*Profile, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("profile %q: "+format, append([]any{c.Name}, args...)...))
	}
	if !profileNameRE.MatchString(c.Name) {
		bad("name must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	p := &Profile{name: c.Name}
	var keys, except, paths []string
	var pats []PatternConfig
	if c.Extends != "" {
		base, ok := lookup(c.Extends)
		if !ok {
			bad("extends: no profile named %q", c.Extends)
		} else {
			p.det = base.det
			keys = slices.Clone(base.cfg.Keys)
			except = slices.Clone(base.cfg.ExceptKeys)
			paths = slices.Clone(base.cfg.Paths)
			pats = slices.Clone(base.cfg.Patterns)
		}
	}
	for i, name := range c.Detectors {
		if name == "all" {
			for _, d := range detectorTable {
				p.det |= d.bit
			}
			continue
		}
		d, ok := detectorByName(name)
		if !ok {
			bad("detectors[%d]: unknown detector %q (known: all, %s)", i, name, strings.Join(DetectorNames(), ", "))
			continue
		}
		p.det |= d
	}
	for i, name := range c.DisableDetectors {
		if name == "all" {
			p.det = 0
			continue
		}
		d, ok := detectorByName(name)
		if !ok {
			bad("disable_detectors[%d]: unknown detector %q (known: all, %s)", i, name, strings.Join(DetectorNames(), ", "))
			continue
		}
		p.det &^= d
	}
	keys = append(keys, c.Keys...)
	except = append(except, c.ExceptKeys...)
	ks, kerrs := compileKeys(keys, except)
	for _, e := range kerrs {
		bad("keys: %v", e)
	}
	p.keys = ks
	paths = append(paths, c.Paths...)
	if len(paths) > maxPaths {
		bad("paths: %d paths, at most %d", len(paths), maxPaths)
	} else {
		for i, s := range paths {
			r, err := parsePath(s)
			if err != nil {
				bad("paths[%d]: %v", i, err)
				continue
			}
			p.paths = append(p.paths, r)
		}
	}
	pats = append(pats, c.Patterns...)
	for i, pc := range pats {
		if !patternTypeRE.MatchString(pc.Type) {
			bad("patterns[%d].type %q: must be 1-40 lower-case letters, digits or '_'", i, pc.Type)
			continue
		}
		if _, builtin := detectorByName(pc.Type); builtin {
			bad("patterns[%d].type %q: is the name of a built-in detector", i, pc.Type)
			continue
		}
		re, err := regexp.Compile(pc.Regexp)
		if err != nil {
			bad("patterns[%d].regexp: %v", i, err)
			continue
		}
		if re.MatchString("") {
			bad("patterns[%d].regexp %q: matches the empty string", i, pc.Regexp)
			continue
		}
		p.patterns = append(p.patterns, pattern{typ: pc.Type, re: re})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.cfg = ProfileConfig{Name: c.Name, Detectors: p.detectorNames(), Keys: keys, ExceptKeys: except, Paths: paths, Patterns: pats}
	if err := p.compileNumberMask(c, lookup); err != nil {
		return nil, fmt.Errorf("profile %q: %w", c.Name, err)
	}
	p.trig = buildTriggers(p)
	p.known = make(map[string]bool)
	addType := func(typ string) {
		p.known[typ] = true
		p.maxType = max(p.maxType, len(typ))
	}
	for _, d := range detectorTable {
		if d.typ != "" {
			addType(d.typ)
		}
	}
	addType(DroppedType)
	for _, typ := range p.keys.m {
		addType(typ)
	}
	p.keys.maskEnd = p.maskEnd
	for _, r := range p.paths {
		addType(r.typ)
	}
	for _, pt := range p.patterns {
		addType(pt.typ)
	}
	return p, nil
}

func (p *Profile) detectorNames() []string {
	var names []string
	for _, d := range detectorTable {
		if p.det&d.bit != 0 {
			names = append(names, d.name)
		}
	}
	return names
}

func (p *Profile) on(d detector) bool { return p.det&d != 0 }

// Set holds the profiles a gateway uses: the built-ins and the ones
// configured, by name. It is safe for concurrent use.
type Set struct {
	profiles map[string]*Profile
}

// NewSet compiles configured profiles next to the built-ins. A configured
// profile may replace a built-in of the same name; two configured profiles
// may not share a name. Extends may name a built-in or a profile listed
// earlier.
func NewSet(configs []ProfileConfig) (*Set, error) {
	s := &Set{profiles: make(map[string]*Profile, len(builtins)+len(configs))}
	for name, p := range builtins {
		s.profiles[name] = p
	}
	seen := make(map[string]bool)
	var errs []error
	for i, c := range configs {
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("profiles[%d]: a profile named %q is already defined", i, c.Name))
			continue
		}
		seen[c.Name] = true
		p, err := compile(c, func(name string) (*Profile, bool) {
			p, ok := s.profiles[name]
			return p, ok
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("profiles[%d]: %w", i, err))
			continue
		}
		s.profiles[c.Name] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Get returns the profile of that name; "" means "default". An unknown
// name is an error: the caller should fail closed rather than not mask.
func (s *Set) Get(name string) (*Profile, error) {
	if name == "" {
		name = DefaultProfile
	}
	p, ok := s.profiles[name]
	if !ok {
		return nil, fmt.Errorf("mask: no masking profile named %q (have %s)", name, strings.Join(s.Names(), ", "))
	}
	return p, nil
}

// Names lists the profiles, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
