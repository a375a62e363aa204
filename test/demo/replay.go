package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// replayStep reads the recording back with the airlock binary, as a user
// would: `airlock sessions` finds the session with the denied call and the
// one with the approved call, `airlock replay` tells each. It checks that
// the denial and the approval are in what it shows.
func replayStep(ctx context.Context, p *printer, bin, cfgPath string) error {
	run := func(args ...string) (string, error) {
		args = append(args[:1:1], append([]string{"--config", cfgPath}, args[1:]...)...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("airlock %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	find := func(filter ...string) (string, error) {
		// The recording is written asynchronously: give it a moment.
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := run(append([]string{"sessions", "--output", "json"}, filter...)...)
			if err != nil {
				return "", err
			}
			var sums []struct {
				SessionID string `json:"session_id"`
			}
			if err := json.Unmarshal([]byte(out), &sums); err != nil {
				return "", fmt.Errorf("airlock sessions: %w", err)
			}
			if len(sums) > 0 {
				return sums[0].SessionID, nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("no recorded session with %s", strings.Join(filter, " "))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, step := range []struct {
		what   string
		filter []string
		want   string
	}{
		{"the denied call", []string{"--tool", "get-env"}, "deny"},
		{"the approved call", []string{"--tool", "delete_repository"}, "approv"},
	} {
		id, err := find(step.filter...)
		if err != nil {
			return err
		}
		out, err := run("replay", id)
		if err != nil {
			return err
		}
		if !strings.Contains(strings.ToLower(out), step.want) {
			return fmt.Errorf("airlock replay %s does not show %s:\n%s", id, step.what, out)
		}
		p.ok("`airlock replay --config %s %s` (%s):", cfgPath, id, step.what)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			p.note("  " + l)
		}
	}
	return nil
}
