package mask

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSSEFieldsAndJoinedData: id, event and retry values are masked (a
// secret there reached the client, which echoes the id as Last-Event-ID)
// without the card detector (a numeric id stays); the joined data of an
// event is masked whole: a token a data line break cuts in two, and a JSON
// document whose string a line break cuts, with key rules applying. Every
// chunking gives the same output.
func TestSSEFieldsAndJoinedData(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		counts         Counts
	}{
		{"secret in id", "id: " + fakeAWSKeyID + "\ndata: x\n\n", "id: [MASKED:aws_access_key]\ndata: x\n\n", one("aws_access_key")},
		{"secret in event", "event: " + fakeGitHub + "\r\ndata: x\r\n\r\n", "event: [MASKED:github_token]\ndata: x\n\n", one("github_token")},
		{"secret in retry", "retry: " + fakeAWSKeyID + "\n\n", "retry: [MASKED:aws_access_key]\n\n", one("aws_access_key")},
		{"id without data", "id:" + fakeAWSKeyID + "\n\n", "id:[MASKED:aws_access_key]\n\n", one("aws_access_key")},
		{"numeric id is not a card", "id: 4111111111111111\ndata: card 4111111111111111\n\n", "id: 4111111111111111\ndata: card [MASKED:card_number]\n\n", one("card_number")},
		{"token cut by a data line break", "data: key AKIAIOSF\ndata: ODNN7EXAMPLE done\n\n", "data: key [MASKED:aws_access_key] done\n\n", one("aws_access_key")},
		{"token cut twice", "data: ghp_aBcDeFgHiJkL\ndata: mNoPqRsTuVwXyZ\ndata: 0123456789\ndata:  next\n\n", "data: [MASKED:github_token]\ndata:  next\n\n", one("github_token")},
		{"lines that only meet", "data: AKIA\ndata: word\n\n", "data: AKIA\ndata: word\n\n", nil},
		{"JSON over data lines, between tokens", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"password\":\"hunter2\"}}\n\n",
			"data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"password\":\"[MASKED:field:password]\"}}\n\n", one("field:password")},
		{"JSON string cut by a data line break", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"api_key\":\"abc\ndata: def\",\"n\":1}}\n\n",
			"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"api_key\":\"[MASKED:field:api_key]\",\"n\":1}}\n\n", one("field:api_key")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 5, len(tc.in)} {
				m := NewSSEMasker(Default(), 4096)
				got := feed(t, m, []byte(tc.in), size)
				if string(got) != tc.want {
					t.Fatalf("chunks of %d:\n%s", size, cmp.Diff(tc.want, string(got)))
				}
				if diff := cmp.Diff(tc.counts, m.Counts(), cmp.Comparer(func(a, b Counts) bool { return a.String() == b.String() })); diff != "" {
					t.Errorf("counts (-want +got):\n%s", diff)
				}
				again := feed(t, NewSSEMasker(Default(), 4096), got, len(got))
				if string(again) != string(got) {
					t.Errorf("not idempotent: %q", again)
				}
			}
		})
	}
}

// TestSSEEventRecordsMaskedIDs: the Event a hook gets carries the masked
// id and type, never the secret.
func TestSSEEventRecordsMaskedIDs(t *testing.T) {
	m := NewSSEMasker(Default(), 4096)
	var got []string
	m.OnEvent(func(e Event) { got = append(got, string(e.Type)+"|"+string(e.ID)+"|"+string(e.Data)) })
	feed(t, m, []byte("event: "+fakeGitHub+"\nid: "+fakeAWSKeyID+"\ndata: x\n\n"), 3)
	if want := []string{"[MASKED:github_token]|[MASKED:aws_access_key]|x"}; !cmp.Equal(want, got) {
		t.Errorf("events %q", got)
	}
}

// TestSSEStop: a hook that stops the masker ends the output at its
// replacement; what follows in the stream is read and discarded.
func TestSSEStop(t *testing.T) {
	stream := "data: first\n\ndata: " + strings.Repeat("y", 100) + "\n\ndata: after " + fakeAWSKeyID + "\n\n"
	want := "data: first\n\nevent: message\ndata: {\"error\":1}\n\n"
	for _, size := range []int{1, 3, 40, len(stream)} {
		m := NewSSEMasker(Default(), 32)
		m.OnOversize(func(int) []byte {
			m.Stop()
			return []byte("event: message\ndata: {\"error\":1}\n\n")
		})
		if got := feed(t, m, []byte(stream), size); string(got) != want {
			t.Errorf("chunks of %d: %q", size, got)
		}
		if !m.Stopped() {
			t.Error("Stopped() false")
		}
	}
}
