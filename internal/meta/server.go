// Package meta serves what airlock says about itself over HTTP, apart
// from what it does: OAuth Protected Resource Metadata (RFC 9728) for
// every MCP target, the health and readiness probes, and Prometheus
// metrics. Its Server is the one HTTP mux of `airlock serve`; the
// approvals API, the inbox and the audit console hang their handlers on
// it with Handle. It stays apart from internal/serve so these documents
// are tested without starting airlock.
package meta

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlock-mcp/airlock/internal/config"
)

// ProtectedResourceMetadata is the RFC 9728 document for one target.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// Server serves the HTTP endpoints.
type Server struct {
	mux   *http.ServeMux
	ready atomic.Bool
	log   *slog.Logger
}

// Options for New.
type Options struct {
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// New builds the HTTP handler for cfg.
func New(cfg *config.Config, opts Options) *Server {
	s := &Server{mux: http.NewServeMux(), log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	docs := map[string]ProtectedResourceMetadata{}
	for _, t := range cfg.Targets {
		docs[t.MetadataPath()] = prmFor(cfg, t)
	}
	if len(cfg.Targets) == 1 {
		// A client that only tries the root well-known URI still finds the lone target.
		docs["/.well-known/oauth-protected-resource"] = prmFor(cfg, cfg.Targets[0])
	}
	s.mux.HandleFunc("GET /.well-known/oauth-protected-resource/", func(w http.ResponseWriter, r *http.Request) {
		s.servePRM(w, r, docs)
	})
	s.mux.HandleFunc("GET /.well-known/oauth-protected-resource", func(w http.ResponseWriter, r *http.Request) {
		s.servePRM(w, r, docs)
	})
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if opts.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return s
}

// Handle adds a handler (the approval API and inbox register here).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// SetReady flips /readyz.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) servePRM(w http.ResponseWriter, r *http.Request, docs map[string]ProtectedResourceMetadata) {
	doc, ok := docs[strings.TrimRight(r.URL.Path, "/")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no protected resource at " + r.URL.Path})
		return
	}
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, doc)
}

func prmFor(cfg *config.Config, t config.Target) ProtectedResourceMetadata {
	var servers []string
	allowed := map[string]bool{}
	for _, n := range t.Issuers {
		allowed[n] = true
	}
	for _, is := range cfg.Issuers {
		if len(allowed) == 0 || allowed[is.Name] {
			servers = append(servers, is.URL)
		}
	}
	return ProtectedResourceMetadata{
		Resource:               t.Resource,
		AuthorizationServers:   servers,
		ScopesSupported:        t.ScopesRequired,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           t.Name,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
