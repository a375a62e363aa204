package approvals

import (
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

// securityHeaders go on every inbox response: no inline script or style,
// nothing from elsewhere, never framed.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "same-origin",
}

// inbox is the web inbox: pages, sign-in, and its own event stream
// (browsers cannot send a bearer token on an EventSource).
type inbox struct {
	h      *Handler
	cfg    InboxConfig
	secret string
	sealer *sealer
	client *http.Client
	// origin is the inbox's public origin (from redirect_url): the only
	// Origin accepted on POSTs.
	origin                     string
	secure                     bool
	sessionCookie, loginCookie string
	pages                      map[string]*template.Template
	fragments                  *template.Template
	signin                     signin
}

func newInbox(h *Handler, cfg InboxConfig, getenv func(string) string, client *http.Client) (*inbox, error) {
	in := &inbox{h: h, cfg: cfg, client: client}
	if cfg.ClientSecretEnv != "" {
		if in.secret = getenv(cfg.ClientSecretEnv); in.secret == "" {
			return nil, fmt.Errorf("inbox.client_secret_env: the environment variable %s is empty or unset", cfg.ClientSecretEnv)
		}
	}
	key := randomKey()
	if cfg.SessionKeyEnv != "" {
		v := getenv(cfg.SessionKeyEnv)
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("inbox.session_key_env: %s must hold 32 random bytes in base64 (openssl rand -base64 32)", cfg.SessionKeyEnv)
		}
		key = b
	} else {
		h.log.Info("inbox sessions are sealed with a per-process key: approvers sign in again after a restart (set inbox.session_key_env to keep them)")
	}
	var err error
	if in.sealer, err = newSealer(key); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.RedirectURL) // validated
	in.origin = u.Scheme + "://" + u.Host
	in.secure = u.Scheme == "https"
	if !in.secure {
		h.log.Warn("the inbox is served over http: its cookies are not Secure; use https outside a loopback test", "redirect_url", cfg.RedirectURL)
	}
	in.sessionCookie, in.loginCookie = cookieNames(in.secure)
	if err := in.parseTemplates(); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *inbox) parseTemplates() error {
	base, err := template.New("layout.html").Funcs(consoleFuncs).ParseFS(templateFS, "web/templates/layout.html", "web/templates/partials.html")
	if err != nil {
		return fmt.Errorf("inbox templates: %w", err)
	}
	in.fragments = base
	in.pages = map[string]*template.Template{}
	for _, name := range []string{"pending", "request", "history", "message", "sessions", "session"} {
		t, err := base.Clone()
		if err == nil {
			_, err = t.ParseFS(templateFS, "web/templates/"+name+".html")
		}
		if err != nil {
			return fmt.Errorf("inbox template %s: %w", name, err)
		}
		in.pages[name] = t
	}
	return nil
}

func (h *Handler) routeInbox() {
	in, p := h.inbox, InboxPrefix
	static, _ := fs.Sub(staticFS, "web/static")
	files := http.StripPrefix(p+"static/", http.FileServerFS(static))
	h.mux.Handle("GET "+p+"static/", in.secured(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	h.mux.HandleFunc("GET "+p+"login", in.secured(in.login))
	h.mux.HandleFunc("GET "+CallbackPath, in.secured(in.callback))
	h.mux.HandleFunc("GET "+p+"{$}", in.secured(in.page(in.pendingPage)))
	h.mux.HandleFunc("GET "+p+"history", in.secured(in.page(in.historyPage)))
	h.mux.HandleFunc("GET "+p+"requests/{id}", in.secured(in.page(in.requestPage)))
	h.mux.HandleFunc("GET "+p+"fragments/pending", in.secured(in.fragment(in.pendingFragment)))
	h.mux.HandleFunc("GET "+p+"fragments/requests/{id}", in.secured(in.fragment(in.requestFragment)))
	h.mux.HandleFunc("GET "+p+"events", in.secured(in.events))
	h.mux.HandleFunc("POST "+p+"requests/{id}/{verdict}", in.secured(in.post(in.decidePost)))
	h.mux.HandleFunc("POST "+p+"grants/{id}/revoke", in.secured(in.post(in.revokePost)))
	h.mux.HandleFunc("POST "+p+"logout", in.secured(in.post(in.logout)))
	h.mux.HandleFunc(p, in.secured(func(w http.ResponseWriter, r *http.Request) {
		in.renderError(w, r, http.StatusNotFound, "There is no inbox page at "+r.URL.Path+".")
	}))
	// grants.approval_url's default base is <http>/requests: send it here.
	h.mux.HandleFunc("GET /requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"requests/"+url.PathEscape(r.PathValue("id")), http.StatusSeeOther)
	})
}

// secured adds the security headers.
func (in *inbox) secured(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		next(w, r)
	}
}
