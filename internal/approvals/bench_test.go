package approvals

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// BenchmarkPendingPage is an approver's inbox with 200 pending requests:
// list, visibility, masking and rendering.
func BenchmarkPendingPage(b *testing.B) {
	f := newInboxFixture(b, nil)
	for i := range 200 {
		p := f.paramsOf(&grants.Request{Target: "github", Kind: grants.KindTool, Tool: "delete_repository"})
		p.Principal.Subject = fmt.Sprintf("user%d", i)
		p.Arguments = []byte(fmt.Sprintf(`{"repo":"acme/r%d","token":"ghp_%036d","note":"<b>x</b>"}`, i, i))
		if _, _, err := f.g.Open(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
	s := approver
	s.CSRF = "csrf"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.inbox.pendingFragment(rec, httptest.NewRequest("GET", "/airlock/inbox/fragments/pending", nil), &s)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkEventFor is the per-event cost of a stream: visibility and masking.
func BenchmarkEventFor(b *testing.B) {
	f := newInboxFixture(b, nil)
	r := f.open(b, "delete_repository", `{"repo":"acme/x","key":"AKIAIOSFODNN7EXAMPLE","list":[1,2,3]}`)
	e := grants.Event{Type: grants.EventRequestOpened, Request: r, Reason: "cleanup"}
	v := approver.viewer()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.h.eventFor(ctx, v, e); !ok {
			b.Fatal("not visible")
		}
	}
}
