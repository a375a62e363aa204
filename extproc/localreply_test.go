package extproc

import (
	"strings"
	"testing"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/wire"
)

// TestLocalReplyNotRecordedAgain: ext_authz's own reply (it carries the
// decision id, and no allow metadata reaches ext_proc) is masked but not
// recorded: ext_authz recorded that decision in its session, and a second
// record here would be an anonymous "allow" error outside any session.
func TestLocalReplyNotRecordedAgain(t *testing.T) {
	e := start(t)
	x := e.open(t, procmodev3.ProcessingMode_STREAMED)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "403", "content-type", "application/json", wire.HeaderDecisionID, "d-denied")}})
	x.recv()
	body := `{"jsonrpc":"2.0","id":3,"error":{"code":-32013,"message":"denied: token ` + ghToken + ` in arguments"}}`
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
	out := string(x.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody())
	if strings.Contains(out, ghToken) {
		t.Errorf("a local reply passed unmasked: %s", out)
	}
	x.stream.CloseSend()
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if len(e.rec.msgs) != 0 {
		t.Fatalf("the local reply was recorded again: %+v", e.rec.msgs)
	}
}

// TestUnreadableRequestIsARequest: what the client sent that is no
// JSON-RPC message is recorded as its request, not as a response.
func TestUnreadableRequestIsARequest(t *testing.T) {
	e := start(t)
	x := e.open(t, procmodev3.ProcessingMode_STREAMED)
	x.requestPhases(meta, `{"not":"json-rpc"`)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "400", "content-type", "application/json")}})
	x.recv()
	x.stream.CloseSend()
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if len(e.rec.msgs) == 0 {
		t.Fatal("nothing recorded")
	}
	if got := e.rec.msgs[0].Direction; got != audit.DirRequest {
		t.Fatalf("the client's unreadable message was recorded as %q, want %q", got, audit.DirRequest)
	}
}
