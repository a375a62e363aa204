package grants

// interner shares equal strings among the records a store recovers.
// Decoding JSON allocates every string anew, so a store of 10,000 grants
// of one holder on one target held that holder, issuer, target, tool and
// state 10,000 times. Only the fields that repeat across records go
// through it (not ids, hashes, call keys or reasons, which are unique);
// it lives for one recovery.
type interner map[string]string

func (in interner) str(s *string) {
	if *s == "" {
		return
	}
	if v, ok := in[*s]; ok {
		*s = v
		return
	}
	in[*s] = *s
}

func (in interner) strs(l []string) {
	for i := range l {
		in.str(&l[i])
	}
}

// mutation interns the repeating fields of m's records in place.
func (in interner) mutation(m *Mutation) {
	for i := range m.Requests {
		in.request(&m.Requests[i])
	}
	for i := range m.Grants {
		in.grant(&m.Grants[i])
	}
}

func (in interner) request(r *Request) {
	in.str((*string)(&r.State))
	in.principal(&r.Principal)
	in.str(&r.Target)
	in.str((*string)(&r.Kind))
	in.str(&r.Tool)
	in.str(&r.Resource)
	in.strs(r.Terms.ApproverGroups)
	in.strs(r.Terms.BreakGlassGroups)
	for i := range r.Decisions {
		d := &r.Decisions[i]
		in.str(&d.Actor)
		in.str(&d.Issuer)
		in.str(&d.User)
		in.str((*string)(&d.Verdict))
		in.strs(d.Groups)
	}
	in.str(&r.EndedBy)
}

func (in interner) principal(p *Principal) {
	in.str(&p.Issuer)
	in.str(&p.Subject)
	in.str(&p.User)
	in.str(&p.ClientID)
	in.strs(p.Groups)
}

func (in interner) grant(g *Grant) {
	in.str((*string)(&g.State))
	in.str(&g.Subject)
	in.str(&g.Issuer)
	in.str(&g.User)
	in.str(&g.ClientID)
	in.str(&g.Target)
	in.str((*string)(&g.Kind))
	in.str(&g.Tool)
	in.str(&g.Resource)
	in.strs(g.ApprovedBy)
	in.str(&g.EndedBy)
}
