package mask

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/cputime"
)

func corpusBytes(docs [][]byte) int64 {
	n := 0
	for _, d := range docs {
		n += len(d)
	}
	return int64(n)
}

// BenchmarkJSONValid is the yardstick: json.Valid over the same corpus.
func BenchmarkJSONValid(b *testing.B) {
	for _, name := range []string{"clean", "secrets"} {
		docs := corpus(name == "secrets")
		b.Run(name, func(b *testing.B) {
			b.SetBytes(corpusBytes(docs))
			b.ReportAllocs()
			for b.Loop() {
				for _, d := range docs {
					if !json.Valid(d) {
						b.Fatal("invalid corpus document")
					}
				}
			}
		})
	}
}

func benchMaskJSON(b *testing.B, secrets bool) {
	docs := corpus(secrets)
	p := Default()
	b.SetBytes(corpusBytes(docs))
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range docs {
			if _, _, err := p.MaskJSON(d); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkMaskJSONClean(b *testing.B)   { benchMaskJSON(b, false) }
func BenchmarkMaskJSONSecrets(b *testing.B) { benchMaskJSON(b, true) }

// BenchmarkMaskJSONRatio runs json.Valid and MaskJSON over the corpus in
// turns and reports MaskJSON's throughput as a fraction of json.Valid's
// ("ratio"; the goal is at least 0.8, clean and with secrets). Both are
// timed side by side, over the same bytes in the same turn, by the CPU
// time of the benchmark's thread (to the nanosecond: see cputime.Thread), so
// that other load on the machine weighs on neither. The goroutine stays
// locked to its thread from before the first reading to after the last.
// What this leaves out is the garbage collector's background work on
// other threads, the cost of MaskJSON's one allocation for a document it
// changes; BenchmarkMaskJSONSecrets (ns/op, allocs) shows that.
func BenchmarkMaskJSONRatio(b *testing.B) {
	for _, name := range []string{"clean", "secrets"} {
		docs := corpus(name == "secrets")
		p := Default()
		b.Run(name, func(b *testing.B) {
			// b.Run runs this in a goroutine of its own: the thread is
			// locked here, where the timing happens, or the thread's CPU
			// time is read on different threads (and comes out negative).
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.SetBytes(corpusBytes(docs))
			var valid, masked time.Duration
			for b.Loop() {
				t0 := cputime.Thread()
				for _, d := range docs {
					if !json.Valid(d) {
						b.Fatal("invalid corpus document")
					}
				}
				t1 := cputime.Thread()
				for _, d := range docs {
					if _, _, err := p.MaskJSON(d); err != nil {
						b.Fatal(err)
					}
				}
				t2 := cputime.Thread()
				valid += t1 - t0
				masked += t2 - t1
			}
			b.ReportMetric(float64(valid)/float64(masked), "ratio")
			b.Logf("masking (%s) at %.2f× the speed of json.Valid over the same bytes (goal ≥ 0.8)", name, float64(valid)/float64(masked))
			b.ReportMetric(float64(corpusBytes(docs))*float64(b.N)/valid.Seconds()/1e6, "valid-MB/s-cpu")
			b.ReportMetric(float64(corpusBytes(docs))*float64(b.N)/masked.Seconds()/1e6, "mask-MB/s-cpu")
		})
	}
}

// adversarial are inputs made to make a scanner go back over the same
// bytes again and again; each must cost about as much as ordinary text.
var adversarial = []string{
	strings.Repeat("-eyJ", 25000), strings.Repeat("sk-", 33000), strings.Repeat("AIza-", 20000),
	strings.Repeat("awssecretx='", 8000) + "\n", strings.Repeat("awssecretx=", 9000), strings.Repeat("a://", 25000),
	strings.Repeat("[MASKED:", 12000), strings.Repeat("Bearer -", 12000), strings.Repeat("x@", 50000),
	strings.Repeat("4-", 50000), strings.Repeat("+1 ", 30000), strings.Repeat("eyJhbGciOiJub25lIn0.-", 5000),
	strings.Repeat("password=", 11000), strings.Repeat("a_", 50000) + "=x", strings.Repeat("'password': '", 8000),
	strings.Repeat("x_password=", 9000), strings.Repeat("Authorization: Bearer ", 5000), strings.Repeat("ghp_", 25000),
	strings.Repeat("github_pat_", 9000), strings.Repeat("xoxb-", 20000), strings.Repeat("-----BEGIN ", 9000),
	strings.Repeat("-----BEGIN PRIVATE KEY-----", 4000), strings.Repeat("https://u:p", 9000), strings.Repeat("a.b@", 25000),
	strings.Repeat("1 ", 50000), strings.Repeat("(555) ", 20000), strings.Repeat("Basic ", 20000),
	strings.Repeat(`{"a":`, 20000), strings.Repeat(`[`, 20000), strings.Repeat(`"\"`, 20000),
	strings.Repeat(" --password ", 9000), strings.Repeat(" mysql -p", 11000), strings.Repeat(`\u0041`, 16000),
	strings.Repeat(fakeAWSKeyID+" "+fakeAWSSecret+" ", 1600), strings.Repeat("-----BEGIN PRIVATE KEY-----\nAAAA\n", 3000),
	strings.Repeat("-----BEGIN PRIVATE KEY----- AAAA ", 3000), strings.Repeat("DBPassword=", 9000), strings.Repeat("xApiKeyPgPassword", 6000) + "=x",
}

// BenchmarkAdversarial masks each adversarial input as text and inside a
// JSON string; MB/s far below the corpus benchmarks means a detector went
// quadratic.
func BenchmarkAdversarial(b *testing.B) {
	p, err := Compile(ProfileConfig{Name: "all", Extends: StrictProfile})
	if err != nil {
		b.Fatal(err)
	}
	var docs [][]byte
	n := 0
	for _, s := range adversarial {
		doc := append(append([]byte(`{"a":`), appendQuoted(nil, []byte(s))...), '}')
		docs = append(docs, doc)
		n += len(s) + len(doc)
	}
	b.SetBytes(int64(n))
	for b.Loop() {
		for k, s := range adversarial {
			p.MaskText([]byte(s))
			if _, _, err := p.MaskJSON(docs[k]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// sseStream frames each corpus document as an SSE event.
func sseStream(docs [][]byte) []byte {
	var s []byte
	for i, d := range docs {
		s = append(s, "event: message\nid: "...)
		s = append(s, byte('0'+i%10), '\n')
		s = append(s, "data: "...)
		s = append(s, d...)
		s = append(s, "\n\n"...)
	}
	return s
}

// BenchmarkSSE masks the corpus as one event stream, in 16 KiB chunks.
func BenchmarkSSE(b *testing.B) {
	for _, name := range []string{"clean", "secrets"} {
		stream := sseStream(corpus(name == "secrets"))
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				m := NewSSEMasker(Default(), 1<<20)
				for s := stream; len(s) > 0; {
					n := min(16<<10, len(s))
					if _, err := m.Write(s[:n]); err != nil {
						b.Fatal(err)
					}
					s = s[n:]
				}
				if _, err := m.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMaskText masks the text of the log and file results.
func BenchmarkMaskText(b *testing.B) {
	var texts [][]byte
	for _, d := range corpus(true) {
		var msg struct {
			Result struct {
				Content []struct{ Text string } `json:"content"`
			} `json:"result"`
		}
		if err := json.Unmarshal(d, &msg); err != nil {
			b.Fatal(err)
		}
		for _, c := range msg.Result.Content {
			texts = append(texts, []byte(c.Text))
		}
	}
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	p := Default()
	for b.Loop() {
		for _, t := range texts {
			p.MaskText(t)
		}
	}
}
