package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/decisionlog"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
)

// policyEvalFlags are airlock policy eval's.
type policyEvalFlags struct {
	config, decision, log, input, dir, query, output string
}

func policyCmd(env *Env) *cobra.Command {
	return parent(groupServer, "policy", "work with the decision policy: re-evaluate logged decisions", policyEvalCmd(env))
}

func policyEvalCmd(env *Env) *cobra.Command {
	f := &policyEvalFlags{}
	cmd := &cobra.Command{
		Use: "eval (--decision ID [--log FILE] | --input FILE) [--config airlock.yaml] [--policy-dir DIR] [--output text|json]",
		Short: "re-evaluate a logged decision (or an input document) against the current policy or --policy-dir, " +
			"and show what differs from the logged result (exit 1 when it does)",
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "airlock.yaml", "path to airlock.yaml (its policy, decision_log.path and masking profiles)")
	fs.StringVar(&f.decision, "decision", "", "the decision id to look up in the decision log")
	fs.StringVar(&f.log, "log", "", "the decision log to read (default decision_log.path of --config)")
	fs.StringVar(&f.input, "input", "", "a decision-log record or a bare policy input document (JSON); - reads stdin")
	fs.StringVar(&f.dir, "policy-dir", "", "evaluate with this policy directory instead of policy.dir of --config")
	fs.StringVar(&f.query, "query", "", "the policy query (default policy.query of --config, else "+rego.DefaultQuery+")")
	fs.StringVarP(&f.output, "output", "o", "text", "text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmdPolicyEval(cmd.Context(), env, f) }
	return cmd
}

// policyEvalResult is what --output json prints.
type policyEvalResult struct {
	DecisionID string                   `json:"decision_id,omitempty"`
	Recorded   *decisionlog.ResultDoc   `json:"recorded,omitempty"`
	Now        *decisionlog.ResultDoc   `json:"now"`
	Revision   map[string]string        `json:"revision"`
	Same       bool                     `json:"same"`
	Diff       []decisionlog.Difference `json:"differences"`
}

// errResultDiffers makes eval exit 1 after printing the difference.
var errResultDiffers = errors.New("the result differs from the logged one")

func cmdPolicyEval(ctx context.Context, env *Env, f *policyEvalFlags) error {
	if (f.decision == "") == (f.input == "") {
		return usageError{msg: "give one of --decision and --input"}
	}
	if f.output != "text" && f.output != "json" {
		return usageError{msg: fmt.Sprintf("--output %q: want text or json", f.output)}
	}
	// The config is optional when --policy-dir and --log/--input say all.
	var cfg *config.Config
	if c, err := config.Load(f.config); err == nil {
		cfg = c
	} else if f.dir == "" || (f.decision != "" && f.log == "") {
		return err
	}
	var (
		rec *decisionlog.Record
		raw []byte
	)
	if f.decision != "" {
		path := f.log
		if path == "" {
			if cfg.DecisionLog.Path == "" {
				return errors.New("no decision log to read: give --log, or set decision_log.path (file sink) in the config")
			}
			path = cfg.DecisionLog.Path
		}
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		if rec, err = decisionlog.Find(fh, f.decision); err != nil {
			return fmt.Errorf("decision %s: %w", f.decision, err)
		}
		if len(rec.Input) == 0 {
			return fmt.Errorf("decision %s was made before policy (%s, %s): nothing to evaluate", f.decision, rec.Gateway.Outcome, rec.Gateway.Reason)
		}
		raw = rec.Input
	} else {
		var b []byte
		var err error
		if f.input == "-" {
			b, err = io.ReadAll(env.Stdin)
		} else {
			b, err = os.ReadFile(f.input)
		}
		if err != nil {
			return err
		}
		if raw, rec, err = decisionlog.ReadInput(b); err != nil {
			return err
		}
	}
	in, err := decisionlog.DecodeInput(raw)
	if err != nil {
		return err
	}
	dir, query := f.dir, f.query
	if cfg != nil {
		if dir == "" {
			dir = cfg.Policy.Dir
		}
		if query == "" {
			query = cfg.Policy.Query
		}
	}
	eng, err := rego.Load(dir, query)
	if err != nil {
		return err
	}
	d, err := eng.Evaluate(ctx, in)
	if err != nil {
		return err
	}
	// The new reason is masked as the logged one was: the target's profile.
	p := mask.Default()
	if cfg != nil {
		if set, err := mask.NewSet(cfg.Masking.Profiles); err == nil {
			for _, t := range cfg.Targets {
				if t.Name == in.Target.Name && t.MaskingProfile != "" {
					if tp, err := set.Get(t.MaskingProfile); err == nil {
						p = tp
					}
				}
			}
		}
	}
	res := policyEvalResult{Now: decisionlog.EncodeResult(&d, p), Revision: map[string]string{"now": d.PolicyVersion}}
	if rec != nil {
		res.DecisionID = rec.DecisionID
		res.Revision["recorded"] = rec.Revision()
		if len(rec.Result) > 0 {
			res.Recorded = &decisionlog.ResultDoc{}
			if err := json.Unmarshal(rec.Result, res.Recorded); err != nil {
				return fmt.Errorf("the logged result: %w", err)
			}
			res.Diff = decisionlog.Compare(res.Recorded, res.Now)
		}
	}
	res.Same = res.Recorded != nil && len(res.Diff) == 0
	if res.Diff == nil {
		res.Diff = []decisionlog.Difference{}
	}
	w := env.Stdout
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printPolicyEval(w, &res)
	}
	if res.Recorded != nil && !res.Same {
		return errResultDiffers
	}
	return nil
}

func printPolicyEval(w io.Writer, r *policyEvalResult) {
	if r.DecisionID != "" {
		fmt.Fprintf(w, "decision %s\n", r.DecisionID)
	}
	if r.Recorded != nil {
		fmt.Fprintf(w, "logged:  %-17s %s (policy %s)\n", r.Recorded.Outcome, r.Recorded.Reason, orNone(r.Revision["recorded"]))
	}
	fmt.Fprintf(w, "now:     %-17s %s (policy %s)\n", r.Now.Outcome, r.Now.Reason, orNone(r.Revision["now"]))
	switch {
	case r.Recorded == nil:
		fmt.Fprintln(w, "(no logged result to compare with)")
	case r.Same:
		fmt.Fprintln(w, "same result")
	default:
		fmt.Fprintln(w, "differences:")
		for _, d := range r.Diff {
			fmt.Fprintf(w, "  %s: logged %q, now %q\n", d.Field, d.Recorded, d.Now)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
