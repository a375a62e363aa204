package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Groups of the root help, in the order shown.
const (
	groupServer = "server"
	groupAccess = "access"
	groupAudit  = "audit"
)

// verbs is every verb of the airlock binary, in the order the help lists
// them within their group. A new verb is one row here and its file.
func verbs(env *Env) []*cobra.Command {
	return []*cobra.Command{
		serveCmd(env),
		validateCmd(env),
		migrateCmd(env),
		parent(groupServer, "envoy", "render Envoy's configuration for this airlock, or show the Envoys it serves",
			envoyBootstrapCmd(env), envoyStatusCmd(env)),
		devCmd(env),
		policyCmd(env),

		accessCmd(env, "requests", cmdRequests),
		accessCmd(env, "request", cmdRequest),
		accessCmd(env, "approve", cmdApprove),
		accessCmd(env, "deny", cmdDeny),
		accessCmd(env, "cancel", cmdCancel),
		accessCmd(env, "grants", cmdGrants),
		accessCmd(env, "revoke", cmdRevoke),
		accessCmd(env, "watch", cmdWatch),

		sessionsCmd(env),
		replayCmd(env),

		versionCmd(env),
	}
}

// Main runs airlock with args (without the program name) and returns the
// process's exit code: 0 done, 1 failed (the reason is on stderr), 2 the
// command line is wrong. SIGINT and SIGTERM cancel the command's context,
// which is how serve shuts down and watch stops.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// Run runs the command line args with env until ctx ends and returns the
// exit code, as Main does; tests call it with their own Env.
func Run(ctx context.Context, args []string, env Env) int {
	env.defaults()
	root := newRoot(&env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return report(cmd, err, env.Stderr)
}

func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "airlock",
		Short: "just-in-time, policy-checked access from AI agents to MCP servers, behind Envoy",
		Long: "airlock — just-in-time, policy-checked access from AI agents to MCP servers, behind Envoy.\n\n" +
			"The access commands call airlock's HTTP API at --server ($AIRLOCK_SERVER, default " + defaultServer + ")\n" +
			"with an OIDC access token for the API audience from --token-file ($AIRLOCK_TOKEN_FILE) or $AIRLOCK_TOKEN.",
		// Unknown verbs reach RunE, which says so as a usage error with
		// suggestions (cobra's own check returns an untyped error).
		Args:          cobra.ArbitraryArgs,
		RunE:          notACommand,
		SilenceErrors: true, // report prints, so every failure has one format
		SilenceUsage:  true,
		// "airlock [flags]" would suggest the root runs something.
		DisableFlagsInUseLine: true,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{msg: flagHint(cmd, err)} })
	root.AddGroup(
		&cobra.Group{ID: groupServer, Title: "Running airlock:"},
		&cobra.Group{ID: groupAccess, Title: "Just-in-time access (through the HTTP API):"},
		&cobra.Group{ID: groupAudit, Title: "Audit trail:"},
	)
	for _, c := range verbs(env) {
		// The usage strings name their flags where they matter;
		// "[flags]" after them would only repeat that.
		c.DisableFlagsInUseLine = true
		for _, sub := range c.Commands() {
			sub.DisableFlagsInUseLine = true
		}
		root.AddCommand(c)
	}
	// cobra adds these two; settle them now so their help reads like the
	// rest of the table.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Short = "print the help of any command"
		case "completion":
			c.Short = "print the shell completion script for bash, zsh, fish or powershell"
		}
	}
	return root
}

// parent is a verb with subcommands (`airlock envoy bootstrap`); alone or
// with an unknown subcommand it is a usage error.
func parent(group, name, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: name, Short: short, GroupID: group, Args: cobra.ArbitraryArgs, RunE: notACommand}
	c.AddCommand(subs...)
	return c
}

// notACommand is the RunE of the root and of parents: they run no action
// of their own, so any invocation that lands on them is a usage error.
func notACommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageError{help: true}
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on the root
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageError{msg: msg, help: true}
}

// flagHint is err's message, plus the spelling airlock wants when a long
// flag was given one dash (`-config`, as Go's flag package accepted).
func flagHint(cmd *cobra.Command, err error) string {
	msg := err.Error()
	_, arg, ok := strings.Cut(msg, "unknown shorthand flag: ")
	if !ok {
		return msg
	}
	if i := strings.LastIndex(arg, " in -"); i >= 0 {
		name, _, _ := strings.Cut(arg[i+len(" in -"):], "=")
		if cmd.Flags().Lookup(name) != nil {
			return msg + " (long flags take two dashes: --" + name + ")"
		}
	}
	return msg
}

// usageError is a command line airlock cannot run: exit 2.
type usageError struct {
	msg  string
	help bool // print the command's whole usage, not just its usage line
}

func (e usageError) Error() string { return e.msg }

// runError is a failure whose message names its subject already
// (`approve req_x: …`), so report prints it without the command path.
type runError struct {
	what string
	err  error
}

func (e runError) Error() string { return e.what + ": " + e.err.Error() }

func (e runError) Unwrap() error { return e.err }

// report prints err for cmd, the command that ran, and returns the exit
// code.
func report(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		if ue.msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), ue.msg)
		}
		if ue.help {
			if ue.msg != "" {
				fmt.Fprintln(stderr)
			}
			fmt.Fprint(stderr, cmd.UsageString())
		} else {
			fmt.Fprintf(stderr, "usage: %s\nRun '%s --help' for its flags.\n", cmd.UseLine(), cmd.CommandPath())
		}
		return ExitUsage
	}
	var re runError
	if errors.As(err, &re) {
		fmt.Fprintln(stderr, re.Error())
		return ExitError
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	return ExitError
}

// accessCmd makes an access verb a row of the table: the common flags,
// the argument count, --output checked, the server and token settled,
// then the API call.
func accessCmd(env *Env, name string, spec *command) *cobra.Command {
	c := &cmdContext{env: env, name: name}
	cmd := &cobra.Command{
		Use:     strings.TrimSpace(name + " " + spec.usage),
		Short:   spec.summary,
		GroupID: groupAccess,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case spec.args == 0 && len(args) > 0:
				return usageError{msg: fmt.Sprintf("takes no arguments, got %q", args)}
			case spec.args > 0 && len(args) != spec.args:
				return usageError{msg: fmt.Sprintf("wants %d argument(s), got %d", spec.args, len(args))}
			case spec.args < 0 && len(args) > 1:
				return usageError{msg: fmt.Sprintf("takes at most one argument, got %d", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.output != "table" && c.output != "json" {
				return usageError{msg: fmt.Sprintf("--output %q: want table or json", c.output)}
			}
			c.args = args
			if err := c.connect(); err != nil {
				return err
			}
			if err := spec.run(cmd.Context(), c); err != nil {
				what := name
				if len(args) > 0 {
					what += " " + args[0]
				}
				return runError{what: what, err: err}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.server, "server", "", "airlock's HTTP address (default $AIRLOCK_SERVER or "+defaultServer+")")
	fs.StringVar(&c.tokFile, "token-file", "", "file holding the bearer token (default $AIRLOCK_TOKEN_FILE, else $AIRLOCK_TOKEN)")
	fs.StringVarP(&c.output, "output", "o", "table", "table or json")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of each API call")
	if spec.flags != nil {
		spec.flags(fs, c)
	}
	return cmd
}
