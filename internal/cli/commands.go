package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/grants"
)

var cmdRequests = &command{
	summary: "list access requests (pending by default), or show one",
	usage:   "[ID] [--state pending|approved|denied|expired|cancelled|all] [--target T] [--mine] [--limit N] [--cursor C]",
	args:    -1,
	flags: func(fs *pflag.FlagSet, c *cmdContext) {
		fs.StringVar(&c.state, "state", "pending", "states, comma-separated, or all")
		listFlags(fs, c)
	},
	run: func(ctx context.Context, c *cmdContext) error {
		if len(c.args) == 1 {
			var r grants.Request
			raw, err := c.call(ctx, http.MethodGet, "requests/"+url.PathEscape(c.args[0]), nil, &r)
			if err != nil {
				return err
			}
			return c.print(raw, func() { printRequest(c.env.Stdout, &r, c.env.Now()) })
		}
		var l approvals.RequestList
		raw, err := c.call(ctx, http.MethodGet, "requests"+c.listQuery(), nil, &l)
		if err != nil {
			return err
		}
		return c.print(raw, func() {
			printRequests(c.env.Stdout, l.Requests, c.env.Now())
			c.more(l.NextCursor)
		})
	},
}

var cmdGrants = &command{
	summary: "list grants (active by default), or show one",
	usage:   "[ID] [--state active|consumed|expired|revoked|all] [--target T] [--mine] [--limit N] [--cursor C]",
	args:    -1,
	flags: func(fs *pflag.FlagSet, c *cmdContext) {
		fs.StringVar(&c.state, "state", "active", "states, comma-separated, or all")
		listFlags(fs, c)
	},
	run: func(ctx context.Context, c *cmdContext) error {
		if len(c.args) == 1 {
			var g grants.Grant
			raw, err := c.call(ctx, http.MethodGet, "grants/"+url.PathEscape(c.args[0]), nil, &g)
			if err != nil {
				return err
			}
			return c.print(raw, func() { printGrant(c.env.Stdout, &g) })
		}
		var l approvals.GrantList
		raw, err := c.call(ctx, http.MethodGet, "grants"+c.listQuery(), nil, &l)
		if err != nil {
			return err
		}
		return c.print(raw, func() {
			printGrants(c.env.Stdout, l.Grants, c.env.Now())
			c.more(l.NextCursor)
		})
	},
}

func listFlags(fs *pflag.FlagSet, c *cmdContext) {
	fs.StringVar(&c.target, "target", "", "only this target")
	fs.BoolVar(&c.mine, "mine", false, "only mine (asked by me / held by me)")
	fs.IntVar(&c.limit, "limit", 0, "at most this many (the API's default 50, at most 500)")
	fs.StringVar(&c.cursor, "cursor", "", "continue a list where the last page ended")
}

func (c *cmdContext) listQuery() string {
	q := url.Values{}
	if c.state != "" && c.state != "all" {
		q.Set("state", c.state)
	}
	if c.target != "" {
		q.Set("target", c.target)
	}
	if c.mine {
		q.Set("mine", "true")
	}
	if c.limit > 0 {
		q.Set("limit", strconv.Itoa(c.limit))
	}
	if c.cursor != "" {
		q.Set("cursor", c.cursor)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// more tells a person how to get the next page.
func (c *cmdContext) more(next string) {
	if next != "" {
		fmt.Fprintf(c.env.Stderr, "more: add --cursor %s\n", next)
	}
}

var cmdRequest = &command{
	summary: "ask for approval ahead of time (policy sets the terms)",
	usage:   "--target T (--tool NAME [--arguments JSON] | --resource URI) --reason TEXT",
	args:    0,
	flags: func(fs *pflag.FlagSet, c *cmdContext) {
		fs.StringVar(&c.target, "target", "", "the MCP target")
		fs.StringVar(&c.tool, "tool", "", "the tool to call")
		fs.StringVar(&c.resource, "resource", "", "the resource URI to read")
		fs.StringVar(&c.arguments, "arguments", "", "the tool's arguments, a JSON object")
		fs.StringVar(&c.reason, "reason", "", "why (approvers see it)")
	},
	run: func(ctx context.Context, c *cmdContext) error {
		body := approvals.CreateBody{Target: c.target, Tool: c.tool, Resource: c.resource, Reason: c.reason}
		if c.arguments != "" {
			if !json.Valid([]byte(c.arguments)) {
				return errors.New("--arguments is not valid JSON")
			}
			body.Arguments = json.RawMessage(c.arguments)
		}
		var res approvals.CreateResult
		raw, err := c.call(ctx, http.MethodPost, "requests", body, &res)
		if err != nil {
			return err
		}
		return c.print(raw, func() {
			r := res.Request
			verb := "opened"
			if res.Joined {
				verb = "joined the pending"
			}
			fmt.Fprintf(c.env.Stdout, "%s request %s: %s on %s, waiting for %s\n", verb, r.ID, r.Name(), r.Target, needs(r))
		})
	},
}

func verdictCommand(verdict grants.Verdict, summary string) *command {
	usage := "ID [--reason TEXT]"
	if verdict == grants.VerdictApprove {
		usage += " [--break-glass] [--scope call-once|args|any] [--for DURATION]"
	}
	return &command{
		summary: summary,
		usage:   usage,
		args:    1,
		flags: func(fs *pflag.FlagSet, c *cmdContext) {
			fs.StringVar(&c.reason, "reason", "", "why (kept with the decision)")
			if verdict == grants.VerdictApprove {
				fs.BoolVar(&c.breakGlass, "break-glass", false, "approve alone as a break-glass approver (needs --reason; flagged and audited)")
				fs.StringVar(&c.scope, "scope", "", "grant less than the request's scope: call-once (this exact call), args (these arguments) or any (any arguments); never wider")
				fs.DurationVar(&c.scopeFor, "for", 0, "grant for at most this long (never longer than the request's scope)")
			}
		},
		run: func(ctx context.Context, c *cmdContext) error {
			var r grants.Request
			path := "requests/" + url.PathEscape(c.args[0]) + "/" + string(verdict)
			body := approvals.VerdictBody{Reason: c.reason, BreakGlass: c.breakGlass}
			if c.scope != "" || c.scopeFor != 0 {
				sb, err := scopeBody(c.scope, c.scopeFor)
				if err != nil {
					return err
				}
				body.Scope = sb
			}
			raw, err := c.call(ctx, http.MethodPost, path, body, &r)
			if err != nil {
				return err
			}
			return c.print(raw, func() { fmt.Fprintln(c.env.Stdout, outcome(&r)) })
		},
	}
}

var (
	cmdApprove = verdictCommand(grants.VerdictApprove, "approve a pending request")
	cmdDeny    = verdictCommand(grants.VerdictDeny, "deny a pending request")
	cmdCancel  = &command{
		summary: "withdraw your own pending request",
		usage:   "ID [--reason TEXT]",
		args:    1,
		flags:   func(fs *pflag.FlagSet, c *cmdContext) { fs.StringVar(&c.reason, "reason", "", "why") },
		run: func(ctx context.Context, c *cmdContext) error {
			var r grants.Request
			raw, err := c.call(ctx, http.MethodPost, "requests/"+url.PathEscape(c.args[0])+"/cancel", approvals.VerdictBody{Reason: c.reason}, &r)
			if err != nil {
				return err
			}
			return c.print(raw, func() { fmt.Fprintln(c.env.Stdout, outcome(&r)) })
		},
	}
	cmdRevoke = &command{
		summary: "end an active grant",
		usage:   "ID [--reason TEXT]",
		args:    1,
		flags:   func(fs *pflag.FlagSet, c *cmdContext) { fs.StringVar(&c.reason, "reason", "", "why") },
		run: func(ctx context.Context, c *cmdContext) error {
			var g grants.Grant
			raw, err := c.call(ctx, http.MethodPost, "grants/"+url.PathEscape(c.args[0])+"/revoke", approvals.VerdictBody{Reason: c.reason}, &g)
			if err != nil {
				return err
			}
			return c.print(raw, func() {
				fmt.Fprintf(c.env.Stdout, "revoked %s (%s on %s, held by %s)\n", g.ID, g.Name(), g.Target, g.Subject)
			})
		},
	}
)

// scopeBody is the narrower scope --scope and --for ask for; the server
// refuses one wider than the request's.
func scopeBody(kind string, d time.Duration) (*approvals.ScopeBody, error) {
	sb := &approvals.ScopeBody{}
	if kind != "" {
		k, err := grants.ParseScopeKind(kind)
		if err != nil {
			return nil, fmt.Errorf("--scope: %w", err)
		}
		sb.Kind = string(k)
	}
	if d < 0 {
		return nil, fmt.Errorf("--for %s is negative", d)
	}
	if d > 0 {
		sb.Duration = d.String()
	}
	return sb, nil
}

// outcome says in words where a request stands after an action.
func outcome(r *grants.Request) string {
	switch r.State {
	case grants.RequestApproved:
		return fmt.Sprintf("approved %s: grant %s issued to %s for %s", r.ID, r.GrantID, r.Principal.Subject, r.Scope().Describe())
	case grants.RequestPending:
		return fmt.Sprintf("recorded on %s: %d of %d approvals, still pending", r.ID, r.Approvals(), max(r.Terms.Threshold, 1))
	default:
		return fmt.Sprintf("%s %s: %s", r.State, r.ID, r.EndReason)
	}
}

// print writes the API's JSON (indented) or the table.
func (c *cmdContext) print(raw []byte, table func()) error {
	if c.output != "json" {
		table()
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the API's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := c.env.Stdout.Write(buf.Bytes())
	return err
}

func needs(r *grants.Request) string {
	s := fmt.Sprintf("%d approval(s) from %s", max(r.Terms.Threshold, 1), strings.Join(r.Terms.ApproverGroups, " or "))
	if r.Terms.SingleUse {
		s += " (single use)"
	}
	return s
}
