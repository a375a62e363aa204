package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sseSample exercises the SSE grammar: a byte-order mark, the three line
// endings, comments, id/event/retry, multi-line data, JSON and text data,
// an event that needs no masking, and an event cut off by the end.
const sseSample = "\xef\xbb\xbf: keep-alive\r\n" +
	"event: message\r\nid: 7\r\nretry: 1000\r\n" +
	`data: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key ` + fakeAWSKeyID + `"}]}}` + "\r\n\r\n" +
	"data: plain\rdata: second " + fakeGitHub + "\r\r\n" +
	"data: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n" +
	": password=hunter2\n\n" +
	"\n\n" +
	"id: 8\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"password\":\"x\"}}\n\n" +
	"data: tail " + fakeAWSKeyID

const sseSampleMasked = "\xef\xbb\xbf: keep-alive\n" +
	"event: message\nid: 7\nretry: 1000\n" +
	`data: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key [MASKED:aws_access_key]"}]}}` + "\n\n" +
	"data: plain\ndata: second [MASKED:github_token]\n\n" +
	"data: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n" +
	": password=[MASKED:field:password]\n\n" +
	"\n\n" +
	"id: 8\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"password\":\"[MASKED:field:password]\"}}\n\n" +
	"data: tail [MASKED:aws_access_key]\n"

// feed runs stream through a masker in the given chunk sizes (the last
// repeated) and returns all output. Chunks go alternately to Write and
// AppendWrite (and the end to Flush or AppendFlush, by the stream's
// length), each a copy that is overwritten after the call: the masker
// must keep nothing of it.
func feed(t testing.TB, m *SSEMasker, stream []byte, sizes ...int) []byte {
	t.Helper()
	var out []byte
	for k := 0; len(stream) > 0; k++ {
		n := min(sizes[min(k, len(sizes)-1)], len(stream))
		chunk := append([]byte(nil), stream[:n]...)
		var err error
		if k%2 == 1 {
			out, err = m.AppendWrite(out, chunk)
		} else {
			var o []byte
			o, err = m.Write(chunk)
			out = append(out, o...)
		}
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		if !bytes.Equal(chunk, stream[:n]) {
			t.Fatal("Write changed the chunk")
		}
		for i := range chunk {
			chunk[i] = 0xff
		}
		if len(m.buf) > m.max+1 {
			t.Fatalf("carry of %d bytes passes the limit %d", len(m.buf), m.max)
		}
		stream = stream[n:]
	}
	if len(out)%2 == 1 {
		out, err := m.AppendFlush(out)
		if err != nil {
			t.Fatalf("Flush: %v", err)
		}
		return out
	}
	o, err := m.Flush()
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return append(out, o...)
}

func TestSSEMasksEvents(t *testing.T) {
	var events []string
	m := NewSSEMasker(Default(), 4096)
	m.OnEvent(func(e Event) {
		events = append(events, string(e.Type)+"|"+string(e.ID)+"|"+string(e.Data)+"|"+e.Counts.String())
	})
	got := feed(t, m, []byte(sseSample), len(sseSample))
	if diff := cmp.Diff(sseSampleMasked, string(got)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	wantEvents := []string{
		`message|7|{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key [MASKED:aws_access_key]"}]}}|aws_access_key=1`,
		"||plain\nsecond [MASKED:github_token]|github_token=1",
		"||{\"jsonrpc\":\"2.0\",\n\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}|",
		"|||field:password=1",
		`|8|{"jsonrpc":"2.0","id":2,"result":{"password":"[MASKED:field:password]"}}|field:password=1`,
		"||tail [MASKED:aws_access_key]|aws_access_key=1",
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counts{"aws_access_key": 2, "github_token": 1, "field:password": 2}, m.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestSSECleanStreamPassesByteForByte(t *testing.T) {
	stream := "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n: ping\r\rdata: a\ndata: b\n\nid: 3\rdata: x\r\r\n\r\n"
	for _, size := range []int{1, 2, 3, 7, len(stream)} {
		if got := feed(t, NewSSEMasker(Default(), 1024), []byte(stream), size); string(got) != stream {
			t.Errorf("chunks of %d: got %q", size, got)
		}
	}
}

func TestSSESplitAtEveryOffset(t *testing.T) {
	stream := []byte(sseSample)
	for off := 1; off < len(stream); off++ {
		m := NewSSEMasker(Default(), 4096)
		got := feed(t, m, stream, off, len(stream))
		if string(got) != sseSampleMasked {
			t.Fatalf("split at %d: output differs:\n%s", off, cmp.Diff(sseSampleMasked, string(got)))
		}
	}
}

func TestSSERandomSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	stream := []byte(sseSample + "\n\n" + sseSample)
	want := string(feed(t, NewSSEMasker(Default(), 4096), stream, len(stream)))
	for range 300 {
		sizes := make([]int, 1+r.IntN(20))
		for i := range sizes {
			sizes[i] = 1 + r.IntN(40)
		}
		if got := feed(t, NewSSEMasker(Default(), 4096), stream, sizes...); string(got) != want {
			t.Fatalf("chunk sizes %v: output differs:\n%s", sizes, cmp.Diff(want, string(got)))
		}
	}
}

func TestSSEOversize(t *testing.T) {
	big := "data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"text\":\"" + strings.Repeat("x", 200) + " " + fakeAWSKeyID + "\"}}"
	for _, end := range []string{"\n\n", "\r\n\r\n", "\r\r"} {
		stream := []byte("data: small\n\n" + big + end + "data: after\n\n" + big)
		want := "data: small\n\n: [airlock: event over 100 bytes dropped]\n\ndata: after\n\n: [airlock: event over 100 bytes dropped]\n\n"
		for _, size := range []int{1, 5, 64, 99, 100, 101, len(stream)} {
			var dropped []int
			m := NewSSEMasker(Default(), 100)
			m.OnEvent(func(e Event) {
				if e.Dropped > 0 {
					dropped = append(dropped, e.Dropped)
				}
			})
			got := feed(t, m, stream, size)
			if string(got) != want {
				t.Errorf("end %q, chunks of %d: output (-want +got):\n%s", end, size, cmp.Diff(want, string(got)))
			}
			if diff := cmp.Diff([]int{len(big) + len(end)/2 + 1, len(big)}, dropped); end != "\r\n\r\n" && diff != "" {
				t.Errorf("end %q, chunks of %d: dropped sizes (-want +got):\n%s", end, size, diff)
			}
			if m.Counts()[DroppedType] != 2 {
				t.Errorf("counts %v: want 2 drops", m.Counts())
			}
		}
	}
}

func TestSSEOversizeHook(t *testing.T) {
	m := NewSSEMasker(Default(), 32)
	m.OnOversize(func(size int) []byte {
		return []byte(`data: {"jsonrpc":"2.0","id":9,"error":{"code":-32603,"message":"response too large"}}` + "\n\n")
	})
	got := feed(t, m, []byte("data: "+strings.Repeat("y", 100)+"\n\ndata: ok\n\n"), 7)
	want := `data: {"jsonrpc":"2.0","id":9,"error":{"code":-32603,"message":"response too large"}}` + "\n\ndata: ok\n\n"
	if string(got) != want {
		t.Errorf("output (-want +got):\n%s", cmp.Diff(want, string(got)))
	}
}

func TestSSEEventAtTheLimit(t *testing.T) {
	ev := "data: " + strings.Repeat("z", 50) + "\n\n" // 58 bytes; the limit counts through the first byte of the blank line
	for _, limit := range []int{57, 58} {
		got := feed(t, NewSSEMasker(Default(), limit), []byte(ev), 3)
		if passed := string(got) == ev; passed != (limit == 58) {
			t.Errorf("limit %d: got %q", limit, got)
		}
	}
}

func TestSSEClosed(t *testing.T) {
	m := NewSSEMasker(Default(), 64)
	if _, err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write([]byte("data: x\n\n")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Flush: %v", err)
	}
	if _, err := m.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Flush: %v", err)
	}
}

func TestSSECutByteOrderMark(t *testing.T) {
	if got := feed(t, NewSSEMasker(Default(), 64), []byte("\xef\xbb"), 1); !bytes.Equal(got, []byte("\xef\xbb")) {
		t.Errorf("got %q", got)
	}
	// A mark and then data: the data is masked as JSON, not as a field
	// named "\ufeffdata".
	got := feed(t, NewSSEMasker(Default(), 64), []byte("\xef\xbb\xbfdata: {\"token\":\"abc\"}\n\n"), 1)
	if want := "\xef\xbb\xbfdata: {\"token\":\"[MASKED:field:token]\"}\n\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestSSEEventJSON: an event's data is marked JSON exactly when it was
// masked as JSON and is JSON as it goes out.
func TestSSEEventJSON(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		json         bool
	}{
		{"object", "data: {\"a\":1}\n\n", true},
		{"masked object", "data: {\"password\":\"hunter2hunter2\"}\n\n", true},
		{"text", "data: hello\n\n", false},
		{"split string, nothing masked", "data: {\"a\":\"b\ndata: c\"}\n\n", false},
		{"split string, masked", "data: {\"password\":\"a\ndata: b\"}\n\n", true},
		{"two JSON lines", "data: 1\ndata: 2\n\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewSSEMasker(Default(), 4096)
			var got []Event
			m.OnEvent(func(ev Event) { ev.Data = bytes.Clone(ev.Data); got = append(got, ev) })
			if _, err := m.Write([]byte(tc.stream)); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d events, want 1", len(got))
			}
			if got[0].JSON != tc.json {
				t.Errorf("JSON %v, want %v (data %q)", got[0].JSON, tc.json, got[0].Data)
			}
			if got[0].JSON && !json.Valid(got[0].Data) {
				t.Errorf("data marked JSON is not: %q", got[0].Data)
			}
		})
	}
}
