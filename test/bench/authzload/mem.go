package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// The memory phase holds many MCP streams open in airlock at once, each as
// Envoy holds one: the Check of its POST (a tools/call answered by an
// event stream), then an ext_proc stream with the request headers and
// body, the text/event-stream response headers and a chunk of events,
// left open as a long tool call's progress stream is. With all of them
// open it reads airlock's resident memory from /proc/<pid>/status, then
// ends every stream as its server would (a last empty chunk with
// end_of_stream) and half-closes it.

// MemResult is the memory phase's figures, taken in an airlock process
// started for it.
type MemResult struct {
	Round   int `json:"round"`
	Streams int `json:"streams"` // open when measured
	Grants  int `json:"grants"`  // live grants in the store
	// RSS and HWM in MB (10^6 bytes): VmRSS before the streams were
	// opened, VmRSS with them open, and VmHWM (the most the process has
	// held since it started: loading the grants included).
	IdleRSS float64 `json:"idle_rss_mb"`
	RSS     float64 `json:"rss_mb"`
	HWM     float64 `json:"hwm_mb"`
	// Anon and File split RSS (with the streams open): the heap and
	// stacks, and the binary's pages (0 where the kernel does not say).
	Anon float64 `json:"rss_anon_mb,omitempty"`
	File float64 `json:"rss_file_mb,omitempty"`
	// LoadRSS and LoadHWM are the same figures of the process that ran
	// the round's load phases, read at their end (0: none ran).
	LoadRSS  float64  `json:"load_rss_mb,omitempty"`
	LoadHWM  float64  `json:"load_hwm_mb,omitempty"`
	Errors   int      `json:"errors"`
	Samples  []string `json:"error_samples,omitempty"`
	OpenTime float64  `json:"open_seconds"`
}

// procStatus is the memory figures of /proc/<pid>/status, in bytes: the
// resident set, its high-water mark, and the resident set's anonymous
// part (heap, stacks) and file-backed part (mostly the binary's pages);
// anon and file are 0 on kernels before 4.5, which lack those lines.
type procStatus struct{ rss, hwm, anon, file uint64 }

// readProcStatus reads the memory figures of pid.
func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	return parseProcStatus(string(b))
}

// parseProcStatus reads the VmRSS, VmHWM, RssAnon and RssFile lines
// ("VmRSS:\t  123456 kB"); VmRSS and VmHWM are required.
func parseProcStatus(s string) (procStatus, error) {
	var st procStatus
	fields := map[string]*uint64{"VmRSS": &st.rss, "VmHWM": &st.hwm, "RssAnon": &st.anon, "RssFile": &st.file}
	var seen int
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		into := fields[name]
		if !ok || into == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return procStatus{}, fmt.Errorf("/proc status: %s line %q is not \"<n> kB\"", name, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return procStatus{}, fmt.Errorf("/proc status: %s: %w", name, err)
		}
		*into = n << 10
		if name == "VmRSS" || name == "VmHWM" {
			seen++
		}
	}
	if seen != 2 {
		return procStatus{}, errors.New("/proc status: no VmRSS and VmHWM lines (a kernel thread, or not Linux)")
	}
	return st, nil
}

func mb(b uint64) float64 { return round1(float64(b) / 1e6) }

// heldStream is one open MCP stream.
type heldStream struct {
	s grpc.ClientStream
}

// memLoad is what the memory phase needs.
type memLoad struct {
	authz, proc []*grpc.ClientConn // ext_authz and ext_proc connections
	work        *Workload
	exp         Expect
	streams     int
	parallel    int // streams being opened at once
	timeout     time.Duration
	pid         int
}

// openHeld plays one stream up to its held state: the Check, then the
// ext_proc messages up to the first chunk of events.
func openHeld(ctx context.Context, authz, procConn *grpc.ClientConn, w *Workload, it *Item, exp Expect, buf []byte) (*heldStream, error) {
	resp := &authv3.CheckResponse{}
	raw := w.encode(it, buf)
	// Whole: ext_proc is given the answer's dynamic_metadata, as Envoy does.
	if err := invoke(ctx, authz, raw, resp, false); err != nil {
		return nil, fmt.Errorf("check: call: %w", err)
	}
	if err := exp.Check(resp, it); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	var cr authv3.CheckRequest
	if err := proto.Unmarshal(raw, &cr); err != nil {
		return nil, err
	}
	hr := cr.GetAttributes().GetRequest().GetHttp()
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	if dm := resp.GetDynamicMetadata(); dm != nil {
		md.FilterMetadata[wire.AuthzNamespace] = dm
	}
	// The request as it goes upstream: ext_authz's header changes applied.
	hs := []string{}
	for k, v := range hr.GetHeaders() {
		if k != "authorization" {
			hs = append(hs, k, v)
		}
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		hs = append(hs, h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	var id int
	if d := wire.ReadDecision(md.FilterMetadata[wire.AuthzNamespace].GetFields()); d.DecisionID == "" {
		return nil, errors.New("check: the allow carries no decision metadata for ext_proc")
	}
	// The JSON-RPC id of the call, for the events that answer it.
	if _, after, ok := strings.Cut(string(hr.GetRawBody()), `"id":`); ok {
		end := strings.IndexAny(after, ",}")
		id, _ = strconv.Atoi(after[:max(end, 0)])
	}
	session := hr.GetHeaders()["mcp-session-id"]
	msgs := []*extprocv3.ProcessingRequest{
		{ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: procmodev3.ProcessingMode_STREAMED},
			Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headerMap(hs...)}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: hr.GetRawBody(), EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headerMap(":status", "200", "content-type", "text/event-stream", "cache-control", "no-cache", "mcp-session-id", session)}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(progressEvents(id, 3))}}},
	}
	s, err := procConn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, procMethod)
	if err != nil {
		return nil, fmt.Errorf("open ext_proc stream: %w", err)
	}
	pr := &extprocv3.ProcessingResponse{}
	for i, m := range msgs {
		m.MetadataContext = md
		if err := s.SendMsg(m); err != nil {
			return nil, fmt.Errorf("send %s: %w", procPhaseName(i), err)
		}
		if err := s.RecvMsg(pr); err != nil {
			return nil, fmt.Errorf("answer to %s: %w", procPhaseName(i), err)
		}
		if err := expectProcAny("sse", i, pr); err != nil {
			return nil, err
		}
	}
	return &heldStream{s: s}, nil
}

// progressEvents is n progress notifications for request id as SSE events.
func progressEvents(id, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "event: message\nid: %d\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":%d,\"progress\":%d,\"message\":\"indexed %d of 40 files\"}}\n\n", i, id, i, i*10)
	}
	return b.String()
}

// end finishes a held stream as its server would: the last (empty)
// chunk with end_of_stream, its answer, the half-close and the end.
func (h *heldStream) end() error {
	last := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{EndOfStream: true}}}
	if err := h.s.SendMsg(last); err != nil {
		return fmt.Errorf("send the last chunk: %w", err)
	}
	pr := &extprocv3.ProcessingResponse{}
	if err := h.s.RecvMsg(pr); err != nil {
		return fmt.Errorf("answer to the last chunk: %w", err)
	}
	if err := h.s.CloseSend(); err != nil {
		return err
	}
	if err := h.s.RecvMsg(pr); !errors.Is(err, io.EOF) {
		return fmt.Errorf("end of stream: got %v, want EOF", err)
	}
	return nil
}

// runMem opens l.streams held streams, reads the target's memory, and
// closes them.
func runMem(ctx context.Context, l memLoad) (MemResult, error) {
	r := MemResult{}
	idle, err := readProcStatus(l.pid)
	if err != nil {
		return r, err
	}
	r.IdleRSS = mb(idle.rss)
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	held := make([]*heldStream, l.streams)
	var errs errorLog
	var wg sync.WaitGroup
	next := make(chan int)
	t0 := time.Now()
	for range max(l.parallel, 1) {
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for i := range next {
				it := &l.work.Items[i%len(l.work.Items)]
				h, err := openHeld(ctx, l.authz[i%len(l.authz)], l.proc[i%len(l.proc)], l.work, it, l.exp, buf)
				if err != nil {
					errs.add(err)
					continue
				}
				held[i] = h
			}
		})
	}
	for i := range l.streams {
		next <- i
	}
	close(next)
	wg.Wait()
	r.OpenTime = round1(time.Since(t0).Seconds())
	for _, h := range held {
		if h != nil {
			r.Streams++
		}
	}
	// Let the collector and the scavenger settle as they would between
	// bursts; the streams stay open meanwhile.
	time.Sleep(2 * time.Second)
	st, err := readProcStatus(l.pid)
	if err != nil {
		return r, err
	}
	r.RSS, r.HWM, r.Anon, r.File = mb(st.rss), mb(st.hwm), mb(st.anon), mb(st.file)
	var cw sync.WaitGroup
	sem := make(chan struct{}, max(l.parallel, 1))
	for _, h := range held {
		if h == nil {
			continue
		}
		sem <- struct{}{}
		cw.Go(func() {
			defer func() { <-sem }()
			if err := h.end(); err != nil {
				errs.add(fmt.Errorf("close: %w", err))
			}
		})
	}
	cw.Wait()
	r.Errors, r.Samples = errs.result()
	return r, nil
}
