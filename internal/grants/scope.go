package grants

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ScopeKind is how much an approval grants, from the least to the most.
type ScopeKind string

// Scope kinds, narrowest first.
const (
	// ScopeCallOnce: this exact call (arguments pinned), once.
	ScopeCallOnce ScopeKind = "call_once"
	// ScopeToolArgs: this tool with these arguments, for a duration.
	ScopeToolArgs ScopeKind = "tool_args"
	// ScopeToolAny: this tool with any arguments, for a duration.
	ScopeToolAny ScopeKind = "tool_any"
)

// ErrWiden is returned when an approver asks for a scope wider than the
// one the policy set: an approver may narrow what approving grants, never
// widen it.
var ErrWiden = errors.New("scope wider than the policy allows")

// rank orders the kinds: a lower rank grants less.
func (k ScopeKind) rank() int {
	switch k {
	case ScopeCallOnce:
		return 0
	case ScopeToolArgs:
		return 1
	case ScopeToolAny:
		return 2
	}
	return -1
}

// ParseScopeKind reads a kind as the API (call_once, tool_args, tool_any)
// or the CLI (call-once, args, any) spells it.
func ParseScopeKind(s string) (ScopeKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "call_once", "call-once", "once":
		return ScopeCallOnce, nil
	case "tool_args", "tool-args", "args":
		return ScopeToolArgs, nil
	case "tool_any", "tool-any", "any":
		return ScopeToolAny, nil
	}
	return "", fmt.Errorf("scope %q: want call_once, tool_args or tool_any (call-once, args, any): %w", s, ErrInvalid)
}

// Scope is exactly what approving a request grants. It is the one value
// every surface (API, CLI, webhooks, Slack, inbox) shows, through Describe,
// so the approver sees the same words everywhere.
type Scope struct {
	Kind ScopeKind `json:"kind"`
	// Duration is how long the grant lasts; zero for ScopeCallOnce (the
	// single-use grant lives only long enough for the held call).
	Duration Duration `json:"duration"`
}

// Scope is what approving a request under these terms grants.
func (t Terms) Scope() Scope {
	switch {
	case t.SingleUse || t.GrantDuration == 0:
		return Scope{Kind: ScopeCallOnce}
	case t.PinArguments:
		return Scope{Kind: ScopeToolArgs, Duration: t.GrantDuration}
	default:
		return Scope{Kind: ScopeToolAny, Duration: t.GrantDuration}
	}
}

// Describe says in words what the scope grants: "this exact call, once",
// "this tool with these arguments for 15m" or "this tool with any
// arguments for 15m".
func (s Scope) Describe() string {
	switch s.Kind {
	case ScopeToolArgs:
		return "this tool with these arguments for " + FormatDuration(time.Duration(s.Duration))
	case ScopeToolAny:
		return "this tool with any arguments for " + FormatDuration(time.Duration(s.Duration))
	}
	return "this exact call, once"
}

// String is Describe.
func (s Scope) String() string { return s.Describe() }

// ScopeView is the scope as the API and webhooks show it: kind, duration
// and the words of Describe.
type ScopeView struct {
	Kind     ScopeKind `json:"kind"`
	Duration Duration  `json:"duration"`
	Text     string    `json:"text"`
}

// View returns the scope with its description.
func (s Scope) View() ScopeView {
	return ScopeView{Kind: s.Kind, Duration: s.Duration, Text: s.Describe()}
}

// Narrow returns want if it grants no more than s (a kind no wider, a
// duration no longer), and an error wrapping ErrWiden otherwise. A zero
// want.Duration keeps s's duration; ScopeCallOnce has no duration.
func (s Scope) Narrow(want Scope) (Scope, error) {
	if want.Kind == "" {
		want.Kind = s.Kind
	}
	if want.Kind.rank() < 0 {
		return Scope{}, fmt.Errorf("scope kind %q: want call_once, tool_args or tool_any: %w", want.Kind, ErrInvalid)
	}
	if want.Duration < 0 {
		return Scope{}, fmt.Errorf("scope duration %s is negative: %w", time.Duration(want.Duration), ErrInvalid)
	}
	if want.Kind.rank() > s.Kind.rank() {
		return Scope{}, fmt.Errorf("%w: %q grants %s, the request allows at most %s", ErrWiden, want.Kind, Scope{Kind: want.Kind, Duration: s.Duration}.Describe(), s.Describe())
	}
	if want.Kind == ScopeCallOnce {
		return Scope{Kind: ScopeCallOnce}, nil
	}
	if want.Duration == 0 {
		want.Duration = s.Duration
	}
	if want.Duration > s.Duration {
		return Scope{}, fmt.Errorf("%w: %s is longer than the request's %s", ErrWiden,
			FormatDuration(time.Duration(want.Duration)), FormatDuration(time.Duration(s.Duration)))
	}
	return want, nil
}

// Choices are the scopes an approver may pick instead of s, from s itself
// down to ScopeCallOnce, each with s's duration: the options of an approve
// form (the inbox's narrowing control). A shorter duration is also
// allowed (Narrow).
func (s Scope) Choices() []Scope {
	var out []Scope
	for _, k := range []ScopeKind{ScopeToolAny, ScopeToolArgs, ScopeCallOnce} {
		if k.rank() > s.Kind.rank() {
			continue
		}
		c := Scope{Kind: k, Duration: s.Duration}
		if k == ScopeCallOnce {
			c.Duration = 0
		}
		out = append(out, c)
	}
	return out
}

// FormatDuration writes d without trailing zero units: 15m, 1h30m, 45s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the request with its scope ("scope": kind, duration
// and text) so every reader of the JSON (API, CLI, webhooks, inbox) shows
// the same words. Reading ignores the field: the scope follows from Terms
// and GrantedScope.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	return json.Marshal(struct {
		plain
		Scope ScopeView `json:"scope"`
	}{plain(r), r.Scope().View()})
}

// Scope is what the grant covers, in the words of its request's scope:
// single use is call_once, pinned arguments tool_args, otherwise tool_any,
// for the time from its creation to its expiry.
func (g *Grant) Scope() Scope {
	switch {
	case g.MaxUses == 1:
		return Scope{Kind: ScopeCallOnce}
	case g.ArgumentsHash != "" || len(g.Arguments) > 0:
		return Scope{Kind: ScopeToolArgs, Duration: Duration(g.Expiry.Sub(g.CreatedAt))}
	default:
		return Scope{Kind: ScopeToolAny, Duration: Duration(g.Expiry.Sub(g.CreatedAt))}
	}
}

// MarshalJSON writes the grant with its scope (kind, duration, text), as
// Request does. Reading ignores the field.
func (g Grant) MarshalJSON() ([]byte, error) {
	type plain Grant
	return json.Marshal(struct {
		plain
		Scope ScopeView `json:"scope"`
	}{plain(g), g.Scope().View()})
}
