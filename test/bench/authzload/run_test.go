package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// asMainEnv makes the test binary behave as authzload itself, so `run`
// can start `authzload noop` from it as a child process.
const asMainEnv = "AUTHZLOAD_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func parseJSONLines(t *testing.T, out string) (targets []TargetResult, summary Summary) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		j, ok := strings.CutPrefix(line, jsonPrefix)
		if !ok {
			continue
		}
		if strings.Contains(j, `"bench":"ext_authz_check_summary"`) {
			if err := json.Unmarshal([]byte(j), &summary); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var r TargetResult
		if err := json.Unmarshal([]byte(j), &r); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, r)
	}
	return targets, summary
}

// TestRunNoopAsProcessAndSkipPeer runs the command end to end: the no-op
// server as a child process, both phases, the report, and the peer
// skipped with a clear note when no binary is given.
func TestRunNoopAsProcessAndSkipPeer(t *testing.T) {
	t.Setenv(asMainEnv, "1")
	jsonPath := filepath.Join(t.TempDir(), "out.jsonl")
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "--targets", "noop,peer", "--peer-bin=", "--users", "2", "--requests", "8",
		"--concurrency", "4", "--conns", "2", "--rate", "200", "--warmup", "100ms", "--duration", "400ms", "--proc-duration", "300ms",
		"--json", jsonPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"| noop |", "set " + peerEnv, "| noop | JSON |", "| noop | SSE |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	targets, summary := parseJSONLines(t, out)
	if len(targets) != 1 || targets[0].Target != "noop" || !targets[0].Launched {
		t.Fatalf("targets %+v, want one launched noop", targets)
	}
	var modes []string
	for _, p := range targets[0].Phases {
		modes = append(modes, p.Mode)
		if p.Errors != 0 || p.Requests == 0 {
			t.Errorf("%s loop: %d requests, %d errors %v", p.Mode, p.Requests, p.Errors, p.ErrorSamples)
		}
	}
	if diff := cmp.Diff([]string{"closed", "open", "proc-json", "proc-sse"}, modes); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	if len(summary.Skipped) != 1 || !strings.Contains(summary.Skipped[0], "peer") {
		t.Errorf("summary skipped %v, want the peer", summary.Skipped)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("--json file has %d lines, want 2 (noop, summary)", n)
	}
}

func TestRunReportsAMissingAirlockBinary(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "--targets", "airlock", "--airlock-bin", filepath.Join(t.TempDir(), "no-such-airlock"),
		"--users", "1", "--requests", "1", "--duration", "100ms", "--warmup", "0s", "--workdir", t.TempDir()}, &stdout, &stderr)
	if code == 0 {
		t.Fatal("a missing airlock binary did not fail the run")
	}
	if !strings.Contains(stderr.String(), "no-such-airlock") {
		t.Errorf("stderr does not name the binary:\n%s", stderr.String())
	}
}

func TestParseRunFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string // substrings; none = valid
	}{
		{"defaults", nil, nil},
		{"unknown target and mode", []string{"--targets", "noop,envoy", "--modes", "closed,burst"}, []string{`unknown target "envoy"`, `unknown mode "burst"`}},
		{"running server without token", []string{"--airlock-addr", "127.0.0.1:9001"}, []string{"--token-env"}},
		{"bad load", []string{"--concurrency", "0", "--rate", "0"}, []string{"concurrency", "rate"}},
		{"fewer requests than users", []string{"--users", "10", "--requests", "5"}, []string{"requests (5) at least users"}},
		{"stray argument", []string{"extra"}, []string{"unexpected arguments"}},
		{"phases alone", []string{"--phases", "mem"}, nil},
		{"light config, authz only", []string{"--full=false", "--phases", "authz"}, nil},
		{"unknown phase", []string{"--phases", "authz,disk"}, []string{`unknown phase "disk"`}},
		{"no phase", []string{"--phases", ","}, []string{"phases: none given"}},
		{"proc needs the full config", []string{"--full=false"}, []string{"keep --full"}},
		{"bad mem and proc flags", []string{"--streams", "0", "--grants", "-1", "--proc-duration", "0s"}, []string{"streams (0)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRunFlags(tc.args, io.Discard)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("valid flags refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want errors %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
