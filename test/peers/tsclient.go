package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Step is one action of the TypeScript SDK client (test/node/client.mjs).
// Op is one of listTools, callTool (Name, Arguments, Progress),
// listResources, readResource (URI), listPrompts, getPrompt (Name,
// Arguments), ping, setLoggingLevel (Level), request (Method, Params: any
// method, result passed through) and terminateSession.
type Step struct {
	Op        string         `json:"op"`
	Name      string         `json:"name,omitempty"`
	Arguments map[string]any `json:"arguments,omitempty"`
	URI       string         `json:"uri,omitempty"`
	Method    string         `json:"method,omitempty"`
	Params    any            `json:"params,omitempty"`
	Level     string         `json:"level,omitempty"`
	// Progress asks for progress notifications (a progressToken is sent);
	// they come back in StepResult.Progress.
	Progress bool `json:"progress,omitempty"`
	// TimeoutMS is the request timeout (default 30000).
	TimeoutMS int `json:"timeoutMs,omitempty"`
}

// ListTools lists the server's tools.
func ListTools() Step { return Step{Op: "listTools"} }

// CallTool calls the tool name with args.
func CallTool(name string, args map[string]any) Step {
	return Step{Op: "callTool", Name: name, Arguments: args}
}

// CallToolWithProgress calls the tool name with args and a progress token.
func CallToolWithProgress(name string, args map[string]any) Step {
	return Step{Op: "callTool", Name: name, Arguments: args, Progress: true}
}

// ListResources lists the server's resources.
func ListResources() Step { return Step{Op: "listResources"} }

// ReadResource reads the resource uri.
func ReadResource(uri string) Step { return Step{Op: "readResource", URI: uri} }

// ListPrompts lists the server's prompts.
func ListPrompts() Step { return Step{Op: "listPrompts"} }

// GetPrompt gets the prompt name with args.
func GetPrompt(name string, args map[string]string) Step {
	a := make(map[string]any, len(args))
	for k, v := range args {
		a[k] = v
	}
	return Step{Op: "getPrompt", Name: name, Arguments: a}
}

// Ping pings the server.
func Ping() Step { return Step{Op: "ping"} }

// StepResult is what one step did. Step 0 is the connect (initialize)
// step, whose Result holds serverInfo, capabilities, instructions,
// protocolVersion and sessionId; step i is Steps[i-1].
type StepResult struct {
	Step int    `json:"step"`
	Op   string `json:"op"`
	OK   bool   `json:"ok"`
	// Result is the MCP result, as JSON, when OK.
	Result json.RawMessage `json:"result,omitempty"`
	// Error says what failed, when not OK.
	Error *StepError `json:"error,omitempty"`
	// Progress holds the params of progress notifications for the step.
	Progress []json.RawMessage `json:"progress,omitempty"`
	// Notifications holds other server notifications seen during the step.
	Notifications []json.RawMessage `json:"notifications,omitempty"`
	// TransportErrors are errors the SDK reported out of band (e.g. a
	// refused GET for the server stream).
	TransportErrors []string `json:"transportErrors,omitempty"`
}

// String is the result as one line of JSON, for test failure messages.
func (r StepResult) String() string {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprintf("step %d (%s): unprintable result: %v", r.Step, r.Op, err)
	}
	return string(b)
}

// StepError is a failed step as the TypeScript SDK reported it.
type StepError struct {
	Name    string `json:"name"`    // McpError, StreamableHTTPError, Error ...
	Message string `json:"message"` // the SDK's message (includes the HTTP body for HTTP errors)
	// Code is the JSON-RPC error code for McpError, the HTTP status for
	// StreamableHTTPError, else 0.
	Code int             `json:"code,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	// HTTP is the last failed POST/DELETE answer during the step, if any.
	HTTP *HTTPFailure `json:"http,omitempty"`
}

func (e *StepError) Error() string { return e.Name + ": " + e.Message }

// HTTPFailure is a non-2xx HTTP answer the client got.
type HTTPFailure struct {
	Status          int    `json:"status"`
	Method          string `json:"method"`
	WWWAuthenticate string `json:"wwwAuthenticate,omitempty"`
	ContentType     string `json:"contentType,omitempty"`
	Body            string `json:"body"` // up to 64 KiB
}

// Decode unmarshals the step's Result into v.
func (r StepResult) Decode(v any) error {
	if !r.OK {
		return fmt.Errorf("step %d (%s) failed: %v", r.Step, r.Op, r.Error)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		return fmt.Errorf("step %d (%s) result: %w", r.Step, r.Op, err)
	}
	return nil
}

// Text is the text contents of a callTool result, joined by newlines.
func (r StepResult) Text() (string, error) {
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := r.Decode(&res); err != nil {
		return "", err
	}
	var texts []string
	for _, c := range res.Content {
		if c.Type == "text" {
			texts = append(texts, c.Text)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// TSClientOptions configures [RunTSClientWith]. The zero value is usable.
type TSClientOptions struct {
	// Headers are added to every request (besides Authorization).
	Headers map[string]string
	// NodeDir is the Node peers directory; default [NodeDir].
	NodeDir string
}

// RunTSClient runs the TypeScript SDK client (test/node/client.mjs) against
// the MCP endpoint url, sending "Authorization: Bearer <token>" when token
// is not empty: it connects (initialize), runs steps in order and returns
// one result per step, the connect step first (see [StepResult]). A failed
// step is a result with OK false, not an error, and later steps still run;
// a failed connect ends the run with that one result. The error is for the
// harness: node could not run, its output was not understood, or ctx ended.
func RunTSClient(ctx context.Context, url, token string, steps []Step) ([]StepResult, error) {
	return RunTSClientWith(ctx, TSClientOptions{}, url, token, steps)
}

// RunTSClientWith is [RunTSClient] with options.
func RunTSClientWith(ctx context.Context, opts TSClientOptions, url, token string, steps []Step) ([]StepResult, error) {
	dir, err := resolveNodeDir(opts.NodeDir)
	if err != nil {
		return nil, err
	}
	if steps == nil {
		steps = []Step{}
	}
	input, err := json.Marshal(steps)
	if err != nil {
		return nil, fmt.Errorf("encoding TS client steps: %w", err)
	}
	env := []string{"MCP_URL=" + url, "MCP_TOKEN=" + token}
	if len(opts.Headers) > 0 {
		h, err := json.Marshal(opts.Headers)
		if err != nil {
			return nil, fmt.Errorf("encoding TS client headers: %w", err)
		}
		env = append(env, "MCP_HEADERS="+string(h))
	}
	cmd := exec.CommandContext(ctx, nodeBinary(dir), filepath.Join(dir, "client.mjs"))
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = bytes.NewReader(input)
	var stdout bytes.Buffer
	stderr := newTailBuffer(outputLimit)
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	runErr := cmd.Run()
	results, parseErr := parseStepLines(stdout.Bytes())
	wrap := func(err error) error {
		return &outputError{err: err, name: "TS client", output: stderr.String()}
	}
	switch {
	case ctx.Err() != nil:
		return results, wrap(fmt.Errorf("TS client against %s stopped after %d results: %w", url, len(results), ctx.Err()))
	case runErr != nil:
		return results, wrap(fmt.Errorf("TS client against %s failed after %d results: %w", url, len(results), runErr))
	case parseErr != nil:
		return results, wrap(fmt.Errorf("TS client against %s: %w", url, parseErr))
	case len(results) == 0:
		return nil, wrap(fmt.Errorf("TS client against %s printed no results", url))
	case results[0].OK && len(results) != len(steps)+1:
		return results, wrap(fmt.Errorf("TS client against %s printed %d results for %d steps plus connect", url, len(results), len(steps)))
	}
	return results, nil
}

// parseStepLines reads client.mjs's output: one JSON StepResult per line,
// numbered from 0. Lines that are not JSON objects are skipped.
func parseStepLines(out []byte) ([]StepResult, error) {
	var results []StepResult
	for n, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r StepResult
		if err := json.Unmarshal(line, &r); err != nil {
			return results, fmt.Errorf("output line %d is not a step result: %w", n+1, err)
		}
		if r.Op == "" {
			return results, fmt.Errorf("output line %d has no op", n+1)
		}
		if r.Step != len(results) {
			return results, fmt.Errorf("output line %d is step %d, want step %d", n+1, r.Step, len(results))
		}
		if r.OK == (r.Error != nil) {
			return results, fmt.Errorf("output line %d must have either ok true or an error", n+1)
		}
		results = append(results, r)
	}
	return results, nil
}
