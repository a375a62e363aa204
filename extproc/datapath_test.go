package extproc_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocv3pb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/extproc"
	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

const (
	secret = "AKIAIOSFODNN7EXAMPLE"
	call   = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_config","arguments":{}}}`
)

// allowAuthz allows every call, with the metadata ext_authz gives ext_proc.
type allowAuthz struct {
	authv3.UnimplementedAuthorizationServer
	mu sync.Mutex
	n  int
}

func (a *allowAuthz) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
	md, _ := structpb.NewStruct(map[string]any{"principal": "00u-alice", "target": "github", "decision_id": "d-9", "masking_profile": "default", "record": true})
	return &authv3.CheckResponse{Status: &status.Status{}, DynamicMetadata: md,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

func (a *allowAuthz) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

type records struct {
	mu   sync.Mutex
	msgs []audit.Event
}

func (r *records) Record(rec audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, *rec.(*audit.Event))
	return nil
}

func (r *records) errors() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, m := range r.msgs {
		if m.Direction == "error" {
			out = append(out, m)
		}
	}
	return out
}

func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// TestDataPath runs airlock's own rendered Envoy configuration (envoy.Build)
// in the Envoy stand-in, with the real Processor behind ext_proc and an
// upstream that answers as the x-case header says: plaintext responses
// reach the agent masked, compressed ones never reach it (a JSON-RPC
// error by the request's id instead, and an audit record), the upstream is
// always asked for accept-encoding identity, and nothing below the target's
// endpoint is served.
func TestDataPath(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"key ` + secret + `"}]}}`
	sse := "event: message\ndata: " + body + "\n\n"
	var upMu sync.Mutex
	var upSeen []string // accept-encoding per request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		upMu.Lock()
		upSeen = append(upSeen, r.URL.Path+" "+strings.Join(r.Header.Values("Accept-Encoding"), "|"))
		upMu.Unlock()
		ct, payload, enc := "application/json", []byte(body), ""
		switch r.Header.Get("X-Case") {
		case "sse":
			ct, payload = "text/event-stream", []byte(sse)
		case "text":
			ct, payload = "text/plain", []byte("key "+secret)
		case "gzip-json":
			payload, enc = gz(body), "gzip"
		case "gzip-sse":
			ct, payload, enc = "text/event-stream", gz(sse), "gzip"
		case "br-text":
			ct, payload, enc = "text/plain", []byte("key "+secret), "br" // not really brotli: never read
		case "sse-fields": // a secret in the id, one cut by a data line break
			ct, payload = "text/event-stream", []byte("id: "+secret+"\ndata: key AKIAIOSF\ndata: ODNN7EXAMPLE\n\n")
		case "html-json": // JSON under another label, the secret behind an escape
			ct, payload = "text/html", []byte(strings.Replace(body, "AKIA", `\u0041KIA`, 1))
		case "utf16-json":
			payload = []byte{0xff, 0xfe}
			for _, c := range []byte(body) {
				payload = append(payload, c, 0)
			}
		case "sse-oversize":
			ct, payload = "text/event-stream", []byte("data: "+strings.Replace(body, "key", strings.Repeat("k", 5000), 1)+"\n\n")
		}
		w.Header().Set("Content-Type", ct)
		if enc != "" {
			w.Header().Set("Content-Encoding", enc)
		}
		w.Write(payload)
	}))
	t.Cleanup(up.Close)

	set, err := mask.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &records{}
	proc := extproc.New(extproc.Options{Profiles: set, Recorder: rec, MaxEventBytes: 4096})
	procAddr := serve(t, func(s *grpc.Server) { extprocv3.RegisterExternalProcessorServer(s, &extproc.Server{P: proc}) })
	authz := &allowAuthz{}
	authzAddr := serve(t, func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, authz) })

	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
public_url: http://127.0.0.1:10000
listen: {authz: %q, proc: %q, http: ""}
issuers: [{name: test, url: "https://issuer.test"}]
targets:
  - name: github
    upstream: http://%s/mcp
policy: {dir: %q}
`, authzAddr, procAddr, up.Listener.Addr(), t.TempDir())), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := envoy.Build(cfg, envoy.Options{ListenAddress: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := envoydriver.New(envoydriver.Config{Listener: res.Listener, Clusters: res.Clusters}, envoydriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	do := func(path, kase string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+path, strings.NewReader(call))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Accept-Encoding", "gzip, br")
		req.Header.Set("X-Case", kase)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, kase := range []string{"json", "sse", "text"} {
		code, got := do("/mcp/github", kase)
		if code != 200 || strings.Contains(got, secret) || !strings.Contains(got, "[MASKED:aws_access_key]") {
			t.Errorf("%s: %d %q, want 200 and masked", kase, code, got)
		}
	}
	for _, kase := range []string{"sse-fields", "html-json"} {
		code, got := do("/mcp/github", kase)
		if code != 200 || strings.Contains(got, secret) || strings.Contains(got, `\u0041KIA`) || !strings.Contains(got, "[MASKED:aws_access_key]") {
			t.Errorf("%s: %d %q, want 200 and masked", kase, code, got)
		}
	}
	if code, got := do("/mcp/github", "utf16-json"); code != 200 || !strings.HasPrefix(got, "\xff\xfe{\x00") ||
		!strings.Contains(got, "[\x00M\x00A\x00S\x00K\x00E\x00D\x00") || strings.Contains(strings.ReplaceAll(got, "\x00", ""), secret) {
		t.Errorf("utf16-json: %d %q, want 200 and masked in UTF-16", code, got)
	}
	before := len(rec.errors())
	if code, got := do("/mcp/github", "sse-oversize"); code != 200 || !strings.Contains(got, `data: {"jsonrpc":"2.0","id":7,"error":`) || strings.Contains(got, secret) {
		t.Errorf("sse-oversize: %d %q, want a JSON-RPC error event for id 7", code, got)
	}
	if errs := rec.errors(); len(errs) != before+1 || errs[len(errs)-1].JSONRPCID != "7" {
		t.Errorf("sse-oversize: audit error records %+v", errs)
	}
	for _, kase := range []string{"gzip-json", "gzip-sse", "br-text"} {
		before := len(rec.errors())
		code, got := do("/mcp/github", kase)
		var e struct {
			ID    json.RawMessage `json:"id"`
			Error struct{ Message string }
		}
		if code != 502 || json.Unmarshal([]byte(got), &e) != nil || string(e.ID) != "7" || !strings.Contains(e.Error.Message, "compressed") {
			t.Errorf("%s: %d %q, want 502 and a JSON-RPC error for id 7", kase, code, got)
		}
		if strings.Contains(got, secret) || strings.Contains(got, "\x1f\x8b") {
			t.Errorf("%s: the server's bytes reached the agent: %q", kase, got)
		}
		if errs := rec.errors(); len(errs) != before+1 || errs[len(errs)-1].JSONRPCID != "7" || errs[len(errs)-1].Status != 502 {
			t.Errorf("%s: audit error records %+v", kase, errs)
		}
	}
	upMu.Lock()
	for _, s := range upSeen {
		if s != "/mcp identity" {
			t.Errorf("upstream saw %q, want path /mcp with accept-encoding identity only", s)
		}
	}
	n := len(upSeen)
	upMu.Unlock()

	checks := authz.count()
	for _, path := range []string{"/mcp/github/admin/secrets", "/mcp/github/", "/mcp/github/x/../../github/y"} {
		if code, got := do(path, "json"); code != 404 || strings.Contains(got, secret) {
			t.Errorf("%s: %d %q, want 404", path, code, got)
		}
	}
	if code, _ := do("/mcp/github%2Fadmin", "json"); code != 400 {
		t.Errorf("escaped slash: %d, want 400", code)
	}
	upMu.Lock()
	defer upMu.Unlock()
	if len(upSeen) != n || authz.count() != checks {
		t.Errorf("a path beside the endpoint reached the upstream (%v) or ext_authz", upSeen[n:])
	}
}

// TestDataPathBodyModes runs the real Processor behind the stand-in's
// ext_proc filter configured with the response body modes airlock does not
// render (envoy refuses to): every byte the agent gets is masked, or the
// response is a 502 JSON-RPC error by the request's id.
func TestDataPathBodyModes(t *testing.T) {
	small := `{"jsonrpc":"2.0","id":7,"result":{"k":"` + secret + `"}}`
	big := `{"jsonrpc":"2.0","id":7,"result":{"k":"` + secret + `","pad":"` + strings.Repeat("x", 300) + `"}}`
	sse := "event: message\ndata: " + big + "\n\n"
	for _, tc := range []struct {
		name          string
		mode          extprocv3pb.ProcessingMode_BodySendMode
		allowOverride bool // Envoy's allow_mode_override
		trust         bool // Options.ModeOverride
		kase          string
		want          string // masked, refused (502 by id) or envoy500 (Envoy's BUFFERED overflow)
	}{
		{"NONE, override honoured: JSON", extprocv3pb.ProcessingMode_NONE, true, true, "small", "masked"},
		{"NONE, override honoured: SSE", extprocv3pb.ProcessingMode_NONE, true, true, "sse", "masked"},
		{"NONE, override not relied on", extprocv3pb.ProcessingMode_NONE, true, false, "small", "refused"},
		{"NONE, no allow_mode_override", extprocv3pb.ProcessingMode_NONE, false, false, "small", "refused"},
		{"BUFFERED_PARTIAL, body fits", extprocv3pb.ProcessingMode_BUFFERED_PARTIAL, false, false, "small", "masked"},
		{"BUFFERED_PARTIAL, body over the buffer", extprocv3pb.ProcessingMode_BUFFERED_PARTIAL, false, false, "big", "refused"},
		// airlock no longer asks a BUFFERED_PARTIAL body to switch to
		// BUFFERED, whose overflow would be Envoy's plain-text 500.
		{"BUFFERED_PARTIAL, override allowed, body over the buffer", extprocv3pb.ProcessingMode_BUFFERED_PARTIAL, true, false, "big", "refused"},
		// The mode airlock renders (STREAMED, allow_mode_override) and
		// relies on: a JSON body is read BUFFERED_PARTIAL, so one over
		// Envoy's buffer is answered by id, not with Envoy's 500.
		{"STREAMED (airlock's), JSON that fits", extprocv3pb.ProcessingMode_STREAMED, true, true, "small", "masked"},
		{"STREAMED (airlock's), JSON over the buffer", extprocv3pb.ProcessingMode_STREAMED, true, true, "big", "too large"},
		{"STREAMED (airlock's), SSE", extprocv3pb.ProcessingMode_STREAMED, true, true, "sse", "masked"},
		{"STREAMED, override not relied on, JSON over the buffer", extprocv3pb.ProcessingMode_STREAMED, true, false, "big", "envoy500"},
		{"BUFFERED_PARTIAL, SSE over the buffer", extprocv3pb.ProcessingMode_BUFFERED_PARTIAL, false, false, "sse", "refused"},
		{"BUFFERED_PARTIAL, SSE switched to STREAMED", extprocv3pb.ProcessingMode_BUFFERED_PARTIAL, true, true, "sse", "masked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				switch tc.kase {
				case "sse":
					w.Header().Set("Content-Type", "text/event-stream")
					w.Write([]byte(sse[:200])) // over the 128-byte buffer
					w.(http.Flusher).Flush()
					time.Sleep(100 * time.Millisecond) // the first part is processed alone
					w.Write([]byte(sse[200:]))
				case "big":
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(big[:200]))
					w.(http.Flusher).Flush()
					time.Sleep(100 * time.Millisecond) // the first part is processed alone
					w.Write([]byte(big[200:]))
				default:
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(small))
				}
			}))
			t.Cleanup(up.Close)
			set, _ := mask.NewSet(nil)
			proc := extproc.New(extproc.Options{Profiles: set, Recorder: &records{}, ModeOverride: tc.trust})
			procAddr := serve(t, func(s *grpc.Server) { extprocv3.RegisterExternalProcessorServer(s, &extproc.Server{P: proc}) })
			authzAddr := serve(t, func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, &allowAuthz{}) })
			cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
public_url: http://127.0.0.1:10000
listen: {authz: %q, proc: %q, http: ""}
issuers: [{name: test, url: "https://issuer.test"}]
targets: [{name: github, upstream: "http://%s/mcp"}]
policy: {dir: %q}
`, authzAddr, procAddr, up.Listener.Addr(), t.TempDir())), "test.yaml")
			if err != nil {
				t.Fatal(err)
			}
			res, err := envoy.Build(cfg, envoy.Options{ListenAddress: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			// The mode airlock would refuse to render, set behind its back.
			hcm := &hcmv3.HttpConnectionManager{}
			if err := res.Listener.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
				t.Fatal(err)
			}
			pc := &extprocv3pb.ExternalProcessor{}
			if err := hcm.HttpFilters[1].GetTypedConfig().UnmarshalTo(pc); err != nil {
				t.Fatal(err)
			}
			pc.ProcessingMode.ResponseBodyMode = tc.mode
			pc.AllowModeOverride = tc.allowOverride
			hcm.HttpFilters[1].ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: anyOf(t, pc)}
			res.Listener.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: anyOf(t, hcm)}
			res.Listener.PerConnectionBufferLimitBytes = wrapperspb.UInt32(128)
			d, err := envoydriver.New(envoydriver.Config{Listener: res.Listener, Clusters: res.Clusters}, envoydriver.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })

			req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/mcp/github", strings.NewReader(call))
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := string(b)
			if strings.Contains(got, secret) {
				t.Fatalf("unmasked bytes reached the agent: %d %q", resp.StatusCode, got)
			}
			switch tc.want {
			case "masked":
				if resp.StatusCode != 200 || !strings.Contains(got, "[MASKED:aws_access_key]") {
					t.Errorf("got %d %q, want it masked", resp.StatusCode, got)
				}
				return
			case "envoy500":
				if resp.StatusCode != 500 {
					t.Errorf("got %d %q, want Envoy's 500 for a BUFFERED body over the limit", resp.StatusCode, got)
				}
				return
			}
			var e struct {
				ID json.RawMessage `json:"id"`
			}
			if resp.StatusCode != 502 || json.Unmarshal(b, &e) != nil || string(e.ID) != "7" {
				t.Errorf("got %d %q, want a 502 JSON-RPC error for id 7", resp.StatusCode, got)
			}
			if tc.want == "too large" && !strings.Contains(got, "limits.max_response_bytes") {
				t.Errorf("got %q, want the error to name limits.max_response_bytes", got)
			}
		})
	}
}

func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
