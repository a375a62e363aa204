package extproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf16"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// How a response reaches airlock: the response_body_mode Envoy announces
// and whether mode_override is relied on (Envoy's NONE switched by it).
type bodyMode struct {
	name  string
	mode  procmodev3.ProcessingMode_BodySendMode
	trust bool
}

var everyMode = []bodyMode{
	{"STREAMED", streamed, false},
	{"BUFFERED", buffered, false},
	{"BUFFERED_PARTIAL", partial, false},
	{"FULL_DUPLEX_STREAMED", duplex, false},
	{"mode_override", noBody, true},
}

// chunkings are the sizes a streamed body is cut into (0: whole).
var chunkings = []int{1, 7, 0}

// outcome is what the agent got for one exchange.
type outcome struct {
	status int    // of an immediate response; 0 when the body went through
	body   []byte // the body the agent got (immediate or masked)
}

// play drives one exchange as Envoy would in mode m: the request (body
// req), response headers (content-type ct, when not empty), and the
// response body in chunks of split bytes (0: one chunk), following a
// mode_override the way Envoy does (BUFFERED: the whole body in one
// message).
func (e *env) play(t *testing.T, m bodyMode, req, ct string, body []byte, split int) outcome {
	t.Helper()
	x := e.open(t, m.mode)
	x.requestPhases(meta, req)
	kv := []string{":status", "200"}
	if ct != "" {
		kv = append(kv, "content-type", ct)
	}
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(kv...)}})
	hr := x.recv()
	if ir := hr.GetImmediateResponse(); ir != nil {
		return outcome{int(ir.GetStatus().GetCode()), ir.GetBody()}
	}
	mode := m.mode
	if o := hr.GetModeOverride(); o != nil {
		mode = o.GetResponseBodyMode()
	}
	size := split
	if mode == buffered || mode == partial || size == 0 || size > len(body) {
		size = max(len(body), 1) // the whole body in one message (it fits Envoy's buffer)
	}
	var out []byte
	var chunks [][]byte
	for i := 0; ; i += size {
		end := min(i+size, len(body))
		chunks = append(chunks, body[i:end])
		if end == len(body) {
			break
		}
	}
	for i, c := range chunks {
		x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: c, EndOfStream: i == len(chunks)-1}}})
		if mode == duplex {
			continue
		}
		r := x.recv()
		if ir := r.GetImmediateResponse(); ir != nil {
			return outcome{int(ir.GetStatus().GetCode()), ir.GetBody()}
		}
		out = append(out, r.GetResponseBody().GetResponse().GetBodyMutation().GetBody()...)
	}
	if mode == duplex {
		x.stream.CloseSend()
		for {
			r, err := x.stream.Recv()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			if ir := r.GetImmediateResponse(); ir != nil {
				return outcome{int(ir.GetStatus().GetCode()), ir.GetBody()}
			}
			out = append(out, r.GetResponseBody().GetResponse().GetBodyMutation().GetStreamedResponse().GetBody()...)
		}
	}
	return outcome{0, out}
}

// eachWay runs fn for every body mode and chunking, with a fresh
// processor (opts changed by mod) per run.
func eachWay(t *testing.T, mod func(*Options), fn func(t *testing.T, e *env, m bodyMode, split int)) {
	for _, m := range everyMode {
		for _, split := range chunkings {
			t.Run(fmt.Sprintf("%s/%d", m.name, split), func(t *testing.T) {
				e := startWith(t, func(o *Options) {
					o.ModeOverride = m.trust
					if mod != nil {
						mod(o)
					}
				})
				fn(t, e, m, split)
			})
		}
	}
}

// sseData returns the data of each event of an SSE stream, joined as
// clients join it.
func sseData(t *testing.T, stream string) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(strings.ReplaceAll(stream, "\r\n", "\n"), "\n\n") {
		var data []string
		has := false
		for _, l := range strings.Split(ev, "\n") {
			if v, ok := strings.CutPrefix(l, "data:"); ok {
				data = append(data, strings.TrimPrefix(v, " "))
				has = true
			}
		}
		if has {
			out = append(out, strings.Join(data, "\n"))
		}
	}
	return out
}

// noSecret fails when s holds one of the secrets, also once JSON escapes
// are decoded.
func noSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	decoded := s
	var v any
	if json.Unmarshal([]byte(s), &v) == nil {
		b, _ := json.Marshal(v)
		decoded = string(b)
	}
	for _, sec := range secrets {
		if strings.Contains(s, sec) || strings.Contains(decoded, sec) {
			t.Fatalf("%s: a secret reached the agent: %q", what, s)
		}
	}
}

func utf16Bytes(s string, be, bom bool) []byte {
	var out []byte
	put := func(u uint16) {
		if be {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	if bom {
		put(0xfeff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		put(u)
	}
	return out
}

func fromUTF16(t *testing.T, b []byte, be bool) string {
	t.Helper()
	if len(b)%2 != 0 {
		t.Fatalf("odd UTF-16 output: %q", b)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if be {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	return string(utf16.Decode(u))
}
