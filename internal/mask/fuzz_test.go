package mask

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

func fuzzProfiles(t testing.TB) []*Profile {
	paths := mustCompile(t, ProfileConfig{Name: "paths", Extends: StrictProfile,
		Paths:    []string{"$.result.*", "$.a[0].b", "$.t.password"},
		Patterns: []PatternConfig{{Type: "ticket", Regexp: `TKT-[0-9]{4}`}}})
	return []*Profile{Default(), profileNamed(t, StrictProfile), profileNamed(t, OffProfile), paths}
}

func jsonSeeds() []string {
	seeds := []string{
		`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"password\":\"x\",\"k\":\"AKIAIOSFODNN7EXAMPLE\"}"}]}}`,
		`[{"jsonrpc":"2.0","id":1,"result":{"token":"a"}},{"jsonrpc":"2.0","method":"x"}]`,
		`{"a":"\u0041KIAIOSFODNN7EXAMPLE \ud83d\ude00 \ud800","b":[1,-2.5e+3,true,null],"c":"postgres:\/\/u:p@h"}`,
		`"Bearer abc123def456ghi"`, `{"t":"\"ghp\\u005faBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789\""}`,
		`{"t":"[MASKED:jwt] password=[MASKED:field:password]"}`, `{"pan":4111111111111111}`,
		`{"a":`, `[1,]`, "\"\x01\"", `{"a":1}x`, ``,
	}
	for _, d := range append(corpus(true), corpus(false)...) {
		seeds = append(seeds, string(d))
	}
	return seeds
}

func FuzzMaskJSON(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add([]byte(s))
	}
	profiles := fuzzProfiles(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		valid := json.Valid(doc)
		for _, p := range profiles {
			out, counts, err := p.MaskJSON(doc)
			if valid != (err == nil) {
				t.Fatalf("%s: json.Valid %v but MaskJSON error %v", p.Name(), valid, err)
			}
			if err != nil {
				if out != nil || counts != nil {
					t.Fatalf("%s: output or counts with an error", p.Name())
				}
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("%s: output is not valid JSON", p.Name())
			}
			if (len(counts) == 0) != bytes.Equal(out, doc) {
				t.Fatalf("%s: counts %v do not agree with the output changing", p.Name(), counts)
			}
			again, c2, err := p.MaskJSON(out)
			if err != nil || !bytes.Equal(again, out) || len(c2) != 0 {
				t.Fatalf("%s: not idempotent (counts %v, err %v)", p.Name(), c2, err)
			}
		}
	})
}

func FuzzMaskText(f *testing.F) {
	for _, s := range append(jsonSeeds(), sseSample, fakePEM, "password=x user=y", "4111 1111 1111 1111", "+1 (555) 123-4567 a@b.co") {
		f.Add([]byte(s))
	}
	profiles := fuzzProfiles(f)
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, p := range profiles {
			out, counts := p.MaskText(text)
			if (len(counts) == 0) != bytes.Equal(out, text) {
				t.Fatalf("%s: counts %v do not agree with the output changing", p.Name(), counts)
			}
			again, c2 := p.MaskText(out)
			if !bytes.Equal(again, out) || len(c2) != 0 {
				t.Fatalf("%s: not idempotent (counts %v)", p.Name(), c2)
			}
		}
	})
}

// FuzzSSE checks that the output does not depend on how the stream is cut
// into chunks, and that a stream with nothing masked or dropped passes
// byte for byte.
func FuzzSSE(f *testing.F) {
	for i, s := range []string{sseSample, "data: a\r\rdata: b\r\n\r\n", "\xef\xbb\xbfdata: {\"token\":\"x\"}\n\n", ": c\n\nid: 1\ndata\n\n",
		"data: " + fakeGitHub + "\r\n\r\n" + "data: " + string(make([]byte, 80)) + "\n\n",
		"id: " + fakeAWSKeyID + "\nevent: x\ndata: AKIAIOSF\rdata: ODNN7EXAMPLE\r\n\r\n",
		"data: {\"password\":\"a\ndata: b\"}\n\nretry: 4111111111111111\n\n"} {
		f.Add([]byte(s), uint64(i))
	}
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		for _, limit := range []int{48, 4096} {
			m := NewSSEMasker(Default(), limit)
			type kept struct {
				data, copy []byte
				counts     Counts
				want       string
			}
			var own []kept
			m.OnEvent(func(ev Event) {
				// What ext_proc then reads without validating it.
				if ev.JSON && !json.Valid(ev.Data) {
					t.Fatalf("limit %d: event data marked JSON is not: %q", limit, ev.Data)
				}
				if ev.Own {
					own = append(own, kept{ev.Data, bytes.Clone(ev.Data), ev.Counts, fmt.Sprint(ev.Counts)})
				}
			})
			whole := feed(t, m, stream, len(stream)+1)
			// An event's own data and counts (ext_proc's records keep
			// them) are never changed by the masker afterwards.
			for _, k := range own {
				if !bytes.Equal(k.data, k.copy) || fmt.Sprint(k.counts) != k.want {
					t.Fatalf("limit %d: the masker changed an event's own data or counts after the event", limit)
				}
			}
			if len(m.Counts()) == 0 && !bytes.Equal(whole, stream) {
				t.Fatalf("limit %d: nothing masked but the output differs", limit)
			}
			sizes := make([]int, 1+r.IntN(8))
			for i := range sizes {
				sizes[i] = 1 + r.IntN(16)
			}
			if got := feed(t, NewSSEMasker(Default(), limit), stream, sizes...); !bytes.Equal(got, whole) {
				t.Fatalf("limit %d, chunk sizes %v: output differs from one chunk", limit, sizes)
			}
			if got := feed(t, NewSSEMasker(Default(), limit), stream, 1); !bytes.Equal(got, whole) {
				t.Fatalf("limit %d, 1-byte chunks: output differs from one chunk", limit)
			}
		}
	})
}
