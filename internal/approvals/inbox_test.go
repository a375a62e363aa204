package approvals

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
)

func get(t *testing.T, f *inboxFixture, path string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestInboxNeedsSignIn(t *testing.T) {
	f := newInboxFixture(t, nil)
	req := f.open(t, "delete_repository", `{"repo":"x"}`)
	expired := f.sessionCookie(t, &session{Issuer: "https://idp.example", Subject: "bob", Groups: approver.Groups, Expires: time.Now().Add(-time.Minute).Unix()})
	forged := f.sessionCookie(t, &session{Issuer: "https://idp.example", Subject: "bob", Groups: approver.Groups})
	forged.Value = forged.Value[:len(forged.Value)-2] + "AA"
	// A valid login-state cookie's value under the session cookie's name.
	swapped := f.sessionCookie(t, &session{Issuer: "https://idp.example", Subject: "bob"})
	swapped.Value, _ = f.h.inbox.sealer.seal(f.h.inbox.loginCookie, session{Subject: "bob", CSRF: "x", Expires: time.Now().Add(time.Hour).Unix()})
	tests := []struct {
		name   string
		path   string
		cookie *http.Cookie
		status int
		where  string
	}{
		{"pending page", "/airlock/inbox/", nil, 303, "/airlock/inbox/login?next=%2Fairlock%2Finbox%2F"},
		{"request page", "/airlock/inbox/requests/" + req.ID, nil, 303, "/airlock/inbox/login?next=%2Fairlock%2Finbox%2Frequests%2F" + req.ID},
		{"expired session", "/airlock/inbox/history", expired, 303, "/airlock/inbox/login?next=%2Fairlock%2Finbox%2Fhistory"},
		{"tampered session", "/airlock/inbox/", forged, 303, "/airlock/inbox/login?next=%2Fairlock%2Finbox%2F"},
		{"sealed under another name", "/airlock/inbox/", swapped, 303, "/airlock/inbox/login?next=%2Fairlock%2Finbox%2F"},
		{"fragment", "/airlock/inbox/fragments/pending", nil, 401, ""},
		{"events", "/airlock/inbox/events", nil, 401, ""},
		{"approval URL", "/requests/" + req.ID, nil, 303, "/airlock/inbox/requests/" + req.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cs []*http.Cookie
			if tc.cookie != nil {
				cs = append(cs, tc.cookie)
			}
			resp, _ := get(t, f, tc.path, cs...)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.where {
				t.Errorf("GET %s = %d → %q, want %d → %q", tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.where)
			}
		})
	}
}

func TestInboxPOSTGuards(t *testing.T) {
	f := newInboxFixture(t, nil)
	s := approver
	cookie := f.sessionCookie(t, &s)
	tests := []struct {
		name      string
		csrf      string
		header    map[string]string
		noCookie  bool
		status    int
		wantState grants.RequestState
	}{
		{name: "no CSRF token", status: 403, wantState: grants.RequestPending},
		{name: "wrong CSRF token", csrf: "nope", status: 403, wantState: grants.RequestPending},
		{name: "another origin", csrf: s.CSRF, header: map[string]string{"Origin": "https://evil.example"}, status: 403, wantState: grants.RequestPending},
		{name: "cross-site fetch", csrf: s.CSRF, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, status: 403, wantState: grants.RequestPending},
		{name: "no session", csrf: s.CSRF, noCookie: true, status: 401, wantState: grants.RequestPending},
		{name: "token in the header", header: map[string]string{"X-CSRF-Token": s.CSRF, "Sec-Fetch-Site": "same-origin"}, status: 303, wantState: grants.RequestApproved},
		{name: "same-origin form", csrf: s.CSRF, header: map[string]string{"Origin": f.srv.URL}, status: 303, wantState: grants.RequestApproved},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := f.open(t, "delete_repository", `{"n":`+string(rune('0'+i))+`}`)
			form := url.Values{"reason": {"ok"}}
			if tc.csrf != "" {
				form.Set("csrf", tc.csrf)
			}
			hr, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/airlock/inbox/requests/"+req.ID+"/approve", strings.NewReader(form.Encode()))
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				hr.Header.Set(k, v)
			}
			if !tc.noCookie {
				hr.AddCookie(cookie)
			}
			resp, err := noRedirect.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("POST = %d, want %d", resp.StatusCode, tc.status)
			}
			got, _ := f.g.Get(context.Background(), req.ID)
			if got.State != tc.wantState {
				t.Errorf("request is %s, want %s", got.State, tc.wantState)
			}
			if tc.status == 303 && resp.Header.Get("Location") != "/airlock/inbox/requests/"+req.ID+"?done=approve" {
				t.Errorf("redirect to %q", resp.Header.Get("Location"))
			}
		})
	}
}

func TestInboxShowsArgumentsSafely(t *testing.T) {
	f := newInboxFixture(t, nil)
	req := f.open(t, "delete_repository", `{"repo":"<script>alert(1)</script>","aws":"AKIAIOSFODNN7EXAMPLE","long":"`+strings.Repeat("x", 400)+`"}`)
	s := approver
	cookie := f.sessionCookie(t, &s)
	for _, path := range []string{"/airlock/inbox/", "/airlock/inbox/fragments/pending", "/airlock/inbox/requests/" + req.ID} {
		resp, body := get(t, f, path, cookie)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		// Issue 15: the whole long string is shown (it was cut at 300
		// runes); the secret still only as its typed placeholder.
		for _, bad := range []string{"<script>alert", "AKIAIOSFODNN7EXAMPLE", "more characters"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s shows %.30q", path, bad)
			}
		}
		for _, good := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "[MASKED:aws_access_key]", strings.Repeat("x", 400), `name="csrf" value="` + s.CSRF + `"`} {
			if !strings.Contains(body, good) {
				t.Errorf("GET %s lacks %q", path, good)
			}
		}
		if path != "/airlock/inbox/fragments/pending" {
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s security headers: CSP %q", path, csp)
			}
		}
	}
	// The requester sees it but gets no form.
	mine := f.sessionCookie(t, &session{Issuer: "https://idp.example", Subject: "00u-alice", Groups: []string{"airlock-approvers"}})
	if _, body := get(t, f, "/airlock/inbox/requests/"+req.ID, mine); strings.Contains(body, `class="decide"`) || !strings.Contains(body, "someone else decides") {
		t.Error("the requester is offered a decision on their own request")
	}
	// Somebody else sees nothing.
	other := f.sessionCookie(t, &session{Issuer: "https://idp.example", Subject: "eve", Groups: []string{"eng"}})
	if resp, _ := get(t, f, "/airlock/inbox/requests/"+req.ID, other); resp.StatusCode != 404 {
		t.Errorf("an outsider's request page = %d, want 404", resp.StatusCode)
	}
}

func TestInboxLoginRedirect(t *testing.T) {
	f := newInboxFixture(t, nil)
	resp, _ := get(t, f, "/airlock/inbox/login?next=/airlock/inbox/history")
	if resp.StatusCode != 303 {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 40 {
			t.Errorf("authorization request %s = %q, want a random value", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("client_id") != "inbox" ||
		q.Get("redirect_uri") != f.srv.URL+CallbackPath || !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("authorization request %v", q)
	}
	var login *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "airlock_login" {
			login = c
		}
	}
	if login == nil || !login.HttpOnly || login.SameSite != http.SameSiteLaxMode {
		t.Fatalf("login cookie %+v", login)
	}
	var st loginState
	if err := f.h.inbox.sealer.open(login.Name, login.Value, &st); err != nil || st.Next != "/airlock/inbox/history" {
		t.Errorf("login state %+v, %v", st, err)
	}

	// Callbacks that do not answer this browser's sign-in.
	bad := []struct {
		name, query string
		cookie      *http.Cookie
	}{
		{"no sign-in cookie", "?state=" + q.Get("state") + "&code=x", nil},
		{"state mismatch", "?state=other&code=x", login},
	}
	for _, tc := range bad {
		var cs []*http.Cookie
		if tc.cookie != nil {
			cs = append(cs, tc.cookie)
		}
		if resp, body := get(t, f, CallbackPath+tc.query, cs...); resp.StatusCode != 400 || !strings.Contains(body, "Start again") {
			t.Errorf("%s: callback = %d", tc.name, resp.StatusCode)
		}
	}
}

func TestSafeNext(t *testing.T) {
	tests := map[string]string{
		"/airlock/inbox/history":          "/airlock/inbox/history",
		"/airlock/inbox/requests/r?x=1":   "/airlock/inbox/requests/r?x=1",
		"/airlock/audit/?tool=get_env":    "/airlock/audit/?tool=get_env",
		"//evil.example/airlock/audit/":   InboxPrefix,
		"https://evil.example/airlock/":   InboxPrefix,
		"//evil.example/airlock/inbox/":   InboxPrefix,
		"/airlock/inbox\\@evil":           InboxPrefix,
		"/elsewhere":                      InboxPrefix,
		CallbackPath + "?code=1":          InboxPrefix,
		"":                                InboxPrefix,
		"javascript:alert(1)//airlock/in": InboxPrefix,
	}
	for in, want := range tests {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
