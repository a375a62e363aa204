package rego

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// Store serves the current Engine of a policy directory and replaces it
// when the directory changes. A reload that fails leaves the last good
// engine serving.
type Store struct {
	dir    string
	query  string
	logger *slog.Logger
	cur    atomic.Pointer[Engine]
	mu     sync.Mutex // serialises reloads
}

// NewStore loads dir (see Load) and fails if the policy is broken.
func NewStore(dir, query string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e, err := Load(dir, query)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, query: e.Query(), logger: logger}
	s.cur.Store(e)
	logger.Info("policy loaded", "dir", dir, "query", e.Query(), "version", e.Version(), "files", len(e.Files()))
	return s, nil
}

// Current is the engine serving now; never nil.
func (s *Store) Current() *Engine { return s.cur.Load() }

// Version is the version of the engine serving now (what ext_authz
// records with a decision taken before any policy ran).
func (s *Store) Version() string { return s.Current().Version() }

// Evaluate evaluates in with the current engine.
func (s *Store) Evaluate(ctx context.Context, in *policy.Input) (policy.Decision, error) {
	return s.Current().Evaluate(ctx, in)
}

// Reload loads the directory again and swaps the new engine in only if it
// loads; otherwise the error is logged (with its file:line:col problems)
// and returned, and the previous engine keeps serving.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() error {
	e, err := Load(s.dir, s.query)
	if err != nil {
		old := s.Current()
		attrs := []any{"dir", s.dir, "serving_version", old.Version(), "err", err.Error()}
		var pe *policy.PolicyError
		if errors.As(err, &pe) {
			attrs = append(attrs, "problems", pe.Problems)
		}
		s.logger.Error("policy reload failed; keeping the last good policy", attrs...)
		return err
	}
	old := s.cur.Swap(e)
	if old.Version() != e.Version() {
		s.logger.Info("policy reloaded", "dir", s.dir, "old_version", old.Version(), "version", e.Version())
	}
	return nil
}

// Watch polls the directory every interval (hashing the policy files'
// names and contents) and reloads when they change, until ctx ends. A
// change that fails to load is logged once and retried only after the
// files change again.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	seen := s.Current().Version()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap, err := readSnapshot(s.dir, false)
		if err != nil {
			if seen != "" {
				s.logger.Error("policy directory unreadable; keeping the last good policy", "dir", s.dir, "err", err.Error())
			}
			seen = ""
			continue
		}
		if snap.hash == seen {
			continue
		}
		seen = snap.hash
		s.mu.Lock()
		if s.Current().Version() != snap.hash {
			_ = s.reloadLocked() // logged inside
		}
		s.mu.Unlock()
	}
}
