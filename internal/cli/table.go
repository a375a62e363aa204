package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// clean makes text from the API safe for a terminal: control characters
// (escape sequences could rewrite the screen) become spaces, and the text
// is cut to n runes (0: no cut).
func clean(s string, n int) string {
	var b strings.Builder
	runes := 0
	for _, r := range s {
		if n > 0 && runes == n {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			r = ' '
		}
		b.WriteRune(r)
		runes++
	}
	return b.String()
}

// age is a compact duration: 45s, 12m, 5h, 3d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + age(-d)
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func printRequests(w io.Writer, rs []*grants.Request, now time.Time) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no requests")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSTATE\tTARGET\tCALL\tSCOPE\tREQUESTER\tAGE\tAPPROVALS\tREASON")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.State, clean(r.Target, 30), clean(r.Name(), 40), r.Scope().Describe(),
			clean(r.Principal.Subject, 40), age(now.Sub(r.CreatedAt)), r.Approvals(), max(r.Terms.Threshold, 1), or(clean(r.Reason, 60), "-"))
	}
	_ = tw.Flush()
}

func printRequest(w io.Writer, r *grants.Request, now time.Time) {
	tw := table(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Request", r.ID)
	row("State", string(r.State))
	row("Call", fmt.Sprintf("%s %s on %s", r.Kind, clean(r.Name(), 0), clean(r.Target, 0)))
	row("Requester", fmt.Sprintf("%s (user %s, via client %s)", clean(r.Principal.Subject, 0), or(clean(r.Principal.User, 0), "-"), or(clean(r.Principal.ClientID, 0), "-")))
	row("Reason", or(clean(r.Reason, 0), "-"))
	row("Opened", fmt.Sprintf("%s (%s ago)", stamp(r.CreatedAt), age(now.Sub(r.CreatedAt))))
	if r.State == grants.RequestPending {
		row("Expires", fmt.Sprintf("%s (in %s)", stamp(r.ExpiresAt), age(r.ExpiresAt.Sub(now))))
	} else {
		row("Ended", fmt.Sprintf("%s: %s", stamp(r.EndedAt), clean(r.EndReason, 0)))
	}
	row("Needs", needs(r)+breakGlass(r.Terms.BreakGlassGroups))
	// What approving grants (or granted), in the words every surface uses.
	row("Scope", r.Scope().Describe())
	if r.GrantID != "" {
		row("Grant", r.GrantID)
	}
	_ = tw.Flush()
	if len(r.Arguments) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, r.Arguments, "  ", "  ") == nil {
			fmt.Fprintf(w, "Arguments (masked):\n  %s\n", cleanLines(buf.String()))
		}
	}
	if len(r.Decisions) > 0 {
		fmt.Fprintln(w, "Decisions:")
		tw = table(w)
		for _, d := range r.Decisions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", stamp(d.At), clean(d.Actor, 40), d.Verdict, or(clean(d.Reason, 80), "-"))
		}
		_ = tw.Flush()
	}
}

// cleanLines cleans each line of a multi-line text.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = clean(l, 0)
	}
	return strings.Join(lines, "\n")
}

func breakGlass(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	return "; break glass: " + strings.Join(groups, ", ")
}

func uses(g *grants.Grant) string {
	if g.MaxUses > 0 {
		return fmt.Sprintf("%d/%d", g.Uses, g.MaxUses)
	}
	return fmt.Sprintf("%d", g.Uses)
}

func printGrants(w io.Writer, gs []*grants.Grant, now time.Time) {
	if len(gs) == 0 {
		fmt.Fprintln(w, "no grants")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSTATE\tTARGET\tCALL\tHOLDER\tUSES\tEXPIRES IN\tAPPROVED BY")
	for _, g := range gs {
		exp := "-"
		if g.State == grants.GrantActive {
			exp = age(g.Expiry.Sub(now))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.State, clean(g.Target, 30), clean(g.Name(), 40),
			clean(g.Subject, 40), uses(g), exp, clean(strings.Join(g.ApprovedBy, ","), 60))
	}
	_ = tw.Flush()
}

func printGrant(w io.Writer, g *grants.Grant) {
	tw := table(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Grant", g.ID)
	row("State", string(g.State))
	row("Covers", fmt.Sprintf("%s %s on %s", g.Kind, clean(g.Name(), 0), clean(g.Target, 0)))
	row("Holder", fmt.Sprintf("%s (via client %s)", clean(g.Subject, 0), or(clean(g.ClientID, 0), "-")))
	row("Request", g.RequestID)
	row("Uses", uses(g))
	row("Valid", fmt.Sprintf("%s to %s", stamp(g.NotBefore), stamp(g.Expiry)))
	row("Approved by", clean(strings.Join(g.ApprovedBy, ", "), 0))
	if g.State != grants.GrantActive {
		row("Ended", fmt.Sprintf("%s: %s", stamp(g.EndedAt), clean(g.EndReason, 0)))
	}
	_ = tw.Flush()
	if len(g.Arguments) > 0 {
		fmt.Fprintf(w, "Only with arguments (masked): %s\n", clean(string(g.Arguments), 0))
	}
}
