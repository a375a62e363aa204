package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadEvents(t *testing.T) {
	stream := "retry: 3000\n\n: ping\n\nevent: reload\ndata: {\"reason\":\"subscribed\"}\n\n" +
		"id: 7\r\nevent: request.opened\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n" +
		"data:plain\n\nevent: cut-off\ndata: x"
	var got []sseEvent
	if err := readEvents(strings.NewReader(stream), func(e sseEvent) bool { got = append(got, e); return true }); err != nil {
		t.Fatal(err)
	}
	want := []sseEvent{
		{Name: "reload", Data: `{"reason":"subscribed"}`},
		{Name: "request.opened", ID: "7", Data: "{\"a\":\n1}"},
		{Name: "message", Data: "plain"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("event: a\ndata: b\n\n")
	f.Add("id: 1\ndata: x\ndata: y\n\n: c\n\n")
	f.Add("data\n\nevent:\n\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		_ = readEvents(strings.NewReader(s), func(e sseEvent) bool {
			n++
			if strings.ContainsAny(e.Name, "\n") || strings.ContainsAny(e.ID, "\n") {
				t.Fatalf("event fields hold a newline: %+v", e)
			}
			return true
		})
		if n > strings.Count(s, "\n")+1 {
			t.Fatalf("%d events from %d lines", n, strings.Count(s, "\n"))
		}
	})
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"plain", 0, "plain"},
		{"\x1b[2Jwiped\r\n", 0, " [2Jwiped  "},
		{"abcdef", 3, "abc…"},
		{"ünï", 2, "ün…"},
		{"bad\xffbyte", 0, "bad byte"},
	}
	for _, tc := range tests {
		if got := clean(tc.in, tc.n); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
