package grants

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Masking happens once, where text enters the grant service (Open,
// Decide, Cancel, Revoke): a call's arguments and every reason, the
// agent's and the approvers', are masked there with the target's profile,
// before anything is stored or told. Everything downstream (the store's
// log and snapshot, the Auditor, the Notifier, subscribers, the held
// call's answer to the agent, the API) only ever sees the masked text, so
// no sink has to remember to mask. For matching, a request and its grant
// keep the hash of the exact arguments' canonical form (ArgumentsHash),
// never the arguments themselves.

// ProfileFunc returns the masking profile of a target (by name).
type ProfileFunc func(target string) *mask.Profile

// ProfilesOf is the ProfileFunc of targets configured with profiles
// (target name → profile name, "" for the default), resolved now so an
// unknown profile fails at start rather than going unmasked.
func ProfilesOf(set *mask.Set, byTarget map[string]string) (ProfileFunc, error) {
	m := make(map[string]*mask.Profile, len(byTarget))
	for target, name := range byTarget {
		p, err := set.Get(name)
		if err != nil {
			return nil, fmt.Errorf("grants: target %s: %w", target, err)
		}
		m[target] = p
	}
	return func(target string) *mask.Profile { return m[target] }, nil
}

// unreadableArguments stands in for arguments the profile cannot parse
// (they always parse: Open compacts valid JSON), so nothing unmasked is
// kept.
var unreadableArguments = json.RawMessage(`"[MASKED:unreadable]"`)

// profile is target's masking profile; mask.Default when Options.Mask is
// unset or has none for it.
func (s *Service) profile(target string) *mask.Profile {
	if s.mask != nil {
		if p := s.mask(target); p != nil {
			return p
		}
	}
	return mask.Default()
}

// maskReason cleans free text (CleanReason) and masks it with p. It
// masks before cutting to MaxReasonRunes, so the cut cannot leave the
// head of a secret the masker no longer recognises.
func maskReason(p *mask.Profile, raw string) string {
	s := cleanText(raw, 0)
	if s == "" {
		return ""
	}
	out, _ := p.MaskText([]byte(s))
	return cleanText(string(out), MaxReasonRunes)
}

// maskArguments is the copy of compacted JSON arguments kept for display.
func maskArguments(p *mask.Profile, args json.RawMessage) json.RawMessage {
	if len(args) == 0 {
		return args
	}
	out, _, err := p.MaskJSON(args)
	if err != nil {
		return unreadableArguments
	}
	return out
}

// redactRequest brings a record from a store written before masking to
// what the store keeps now: hash and masked copy of the arguments, masked
// reasons. It reports whether it changed anything; masking masked text
// changes nothing, so records already kept so are left as they are.
func redactRequest(p *mask.Profile, r *Request) bool {
	changed := false
	if len(r.Arguments) > 0 && r.ArgumentsHash == "" {
		r.ArgumentsHash = hashStored(r.Arguments)
		changed = true
	}
	if a := maskArguments(p, r.Arguments); string(a) != string(r.Arguments) {
		r.Arguments, changed = a, true
	}
	changed = remask(p, &r.Reason) || changed
	changed = remaskEnd(p, &r.EndReason, r.EndedBy) || changed
	for i := range r.Decisions {
		changed = remask(p, &r.Decisions[i].Reason) || changed
	}
	return changed
}

// redactGrant is redactRequest for a grant.
func redactGrant(p *mask.Profile, g *Grant) bool {
	changed := false
	if len(g.Arguments) > 0 && g.ArgumentsHash == "" {
		g.ArgumentsHash = hashStored(g.Arguments)
		changed = true
	}
	if a := maskArguments(p, g.Arguments); string(a) != string(g.Arguments) {
		g.Arguments, changed = a, true
	}
	return remaskEnd(p, &g.EndReason, g.EndedBy) || changed
}

// hashStored is the arguments hash of raw arguments an older store kept.
func hashStored(raw json.RawMessage) string {
	c, err := CanonicalArguments(raw)
	if err != nil {
		c = raw // never stored so; hashed as bytes, it can match nothing wrongly
	}
	return policy.HashCanonical(c)
}

// remaskEnd masks the person's reason inside an end reason ("denied by
// bob: <reason>", "cancelled by the requester: <reason>", and the break
// glass and revoke forms), the only free text one holds; the rest is
// airlock's own words and names, left as written (a strict profile would
// otherwise mask the approver's e-mail address in "approved by …").
func remaskEnd(p *mask.Profile, s *string, endedBy string) bool {
	for _, prefix := range []string{
		"denied by " + endedBy + ": ", "break glass by " + endedBy + ": ",
		"revoked by " + endedBy + ": ", "cancelled by the requester: ",
	} {
		if rest, ok := strings.CutPrefix(*s, prefix); ok {
			if !remask(p, &rest) {
				return false
			}
			*s = prefix + rest
			return true
		}
	}
	return false
}

func remask(p *mask.Profile, s *string) bool {
	if *s == "" {
		return false
	}
	m := maskReason(p, *s)
	if m == *s {
		return false
	}
	*s = m
	return true
}

// rewriter is a Store that can replace its whole content at once and
// leave no older copy of any record in its files (FileStore, MemStore).
type rewriter interface {
	rewrite(ctx context.Context, snap Snapshot) error
}

// redactLoaded masks what a store written before masking holds (raw
// arguments and reasons), and has the store rewrite itself so its files
// keep no raw copy. A store that cannot rewrite gets each changed record
// as its next version.
func (s *Service) redactLoaded(ctx context.Context, snap *Snapshot) error {
	var reqs, grs []int // indices of the changed records
	for i := range snap.Requests {
		if redactRequest(s.profile(snap.Requests[i].Target), &snap.Requests[i]) {
			reqs = append(reqs, i)
		}
	}
	for i := range snap.Grants {
		if redactGrant(s.profile(snap.Grants[i].Target), &snap.Grants[i]) {
			grs = append(grs, i)
		}
	}
	if len(reqs)+len(grs) == 0 {
		return nil
	}
	s.log.Info("grant store: masking records kept by an older version (arguments hashed and masked, reasons masked)",
		"requests", len(reqs), "grants", len(grs))
	if rw, ok := s.store.(rewriter); ok {
		if err := rw.rewrite(ctx, *snap); err != nil {
			return fmt.Errorf("grant store: rewriting masked records: %w", err)
		}
		return nil
	}
	var m Mutation
	for _, i := range reqs {
		snap.Requests[i].Version++
		m.Requests = append(m.Requests, snap.Requests[i])
	}
	for _, i := range grs {
		snap.Grants[i].Version++
		m.Grants = append(m.Grants, snap.Grants[i])
	}
	if err := s.store.Apply(ctx, m); err != nil {
		return fmt.Errorf("grant store: storing masked records: %w", err)
	}
	return nil
}
