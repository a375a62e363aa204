package rego

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"
)

// snapshot is the policy files of a directory read into memory at one
// moment, so that what is compiled and what is hashed are the same bytes.
type snapshot struct {
	dir   string
	files map[string][]byte // slash-separated path relative to dir → content
	hash  string            // version: hash of the non-test files
}

// isPolicyFile says whether name is a file the loader reads: Rego, JSON
// or YAML data. Rego tests are included only when tests is true.
func isPolicyFile(name string, tests bool) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".rego":
		return tests || !isTestFile(name)
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// readSnapshot reads every policy file under dir. Hidden entries (names
// starting with ".", such as the ..data links of a Kubernetes ConfigMap
// volume) are skipped; symbolic links are followed, each directory once.
func readSnapshot(dir string, tests bool) (*snapshot, error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("policy directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("policy directory %s is not a directory", dir)
	}
	s := &snapshot{dir: dir, files: map[string][]byte{}}
	seen := map[string]bool{}
	if err := s.walk(dir, "", tests, seen); err != nil {
		return nil, err
	}
	s.hash = s.digest()
	return s, nil
}

func (s *snapshot) walk(abs, rel string, tests bool, seen map[string]bool) error {
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("policy directory %s: %w", abs, err)
	}
	if seen[real] {
		return nil
	}
	seen[real] = true
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("policy directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		childAbs := filepath.Join(abs, name)
		childRel := path.Join(rel, name)
		info, err := os.Stat(childAbs) // follows links
		if err != nil {
			return fmt.Errorf("policy file %s: %w", childAbs, err)
		}
		if info.IsDir() {
			if err := s.walk(childAbs, childRel, tests, seen); err != nil {
				return err
			}
			continue
		}
		if !info.Mode().IsRegular() || !isPolicyFile(name, tests) {
			continue
		}
		b, err := os.ReadFile(childAbs)
		if err != nil {
			return fmt.Errorf("policy file: %w", err)
		}
		s.files[childRel] = b
	}
	return nil
}

// digest hashes the non-test files, names and contents, in name order.
func (s *snapshot) digest() string {
	h := sha256.New()
	for _, name := range s.names() {
		if isTestFile(name) {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(s.files[name]))
		h.Write(s.files[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (s *snapshot) names() []string {
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fs is the snapshot as a file system for OPA's loader, optionally
// without the Rego tests.
func (s *snapshot) fs(tests bool) fs.FS {
	m := fstest.MapFS{}
	for name, b := range s.files {
		if !tests && isTestFile(name) {
			continue
		}
		m[name] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return m
}

// path turns a name relative to the snapshot's directory (as OPA reports
// it) into the file's path on disk.
func (s *snapshot) path(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(s.dir, filepath.FromSlash(name))
}

// checkJSON validates the JSON data files up front so that a syntax error
// is reported as file:line:col (OPA's loader reports only a byte offset).
func (s *snapshot) checkJSON() error {
	var errs []error
	for _, name := range s.names() {
		if strings.ToLower(path.Ext(name)) != ".json" {
			continue
		}
		b := s.files[name]
		var v any
		err := json.Unmarshal(b, &v)
		if err == nil {
			continue
		}
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			line, col := lineCol(b, syn.Offset)
			errs = append(errs, fmt.Errorf("%s:%d:%d: invalid JSON data: %s", s.path(name), line, col, syn.Error()))
		case errors.As(err, &typ):
			line, col := lineCol(b, typ.Offset)
			errs = append(errs, fmt.Errorf("%s:%d:%d: invalid JSON data: %s", s.path(name), line, col, typ.Error()))
		default:
			errs = append(errs, fmt.Errorf("%s: invalid JSON data: %v", s.path(name), err))
		}
	}
	return errors.Join(errs...)
}

// lineCol converts the offset encoding/json reports (the number of bytes
// read when the error was found) into the 1-based line and column of the
// last byte read.
func lineCol(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	if off > 0 {
		off--
	}
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
