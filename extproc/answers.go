package extproc

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// The answers every exchange gets are allocated with their parts at once
// (a response, its oneof wrapper, the inner response...): one allocation
// each instead of three to eleven. They are the same messages.

func requestHeadersAnswer() *extprocv3.ProcessingResponse {
	a := new(struct {
		r extprocv3.ProcessingResponse
		o extprocv3.ProcessingResponse_RequestHeaders
		h extprocv3.HeadersResponse
	})
	a.o.RequestHeaders, a.r.Response = &a.h, &a.o
	return &a.r
}

func requestBodyAnswer() *extprocv3.ProcessingResponse {
	a := new(struct {
		r extprocv3.ProcessingResponse
		o extprocv3.ProcessingResponse_RequestBody
		b extprocv3.BodyResponse
	})
	a.o.RequestBody, a.r.Response = &a.b, &a.o
	return &a.r
}

func responseHeadersAnswer() *extprocv3.ProcessingResponse {
	a := new(struct {
		r extprocv3.ProcessingResponse
		o extprocv3.ProcessingResponse_ResponseHeaders
		h extprocv3.HeadersResponse
	})
	a.o.ResponseHeaders, a.r.Response = &a.h, &a.o
	return &a.r
}

// responseBodyAnswer is a response body's answer with a common response
// cr, to be filled.
func responseBodyAnswer() (r *extprocv3.ProcessingResponse, cr *extprocv3.CommonResponse) {
	a := new(struct {
		r extprocv3.ProcessingResponse
		o extprocv3.ProcessingResponse_ResponseBody
		b extprocv3.BodyResponse
		c extprocv3.CommonResponse
	})
	a.b.Response, a.o.ResponseBody, a.r.Response = &a.c, &a.b, &a.o
	return &a.r, &a.c
}

// bodyMutation replaces the body with out.
func bodyMutation(out []byte) *extprocv3.BodyMutation {
	a := new(struct {
		m extprocv3.BodyMutation
		b extprocv3.BodyMutation_Body
	})
	a.b.Body, a.m.Mutation = out, &a.b
	return &a.m
}

// contentLength sets content-length to n.
func contentLength(n int) *extprocv3.HeaderMutation {
	a := new(struct {
		m   extprocv3.HeaderMutation
		set [1]*corev3.HeaderValueOption
		o   corev3.HeaderValueOption
		v   corev3.HeaderValue
		n   [20]byte
	})
	a.v.Key, a.v.RawValue = "content-length", strconv.AppendInt(a.n[:0], int64(n), 10)
	a.o.Header, a.o.AppendAction = &a.v, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	a.set[0] = &a.o
	a.m.SetHeaders = a.set[:]
	return &a.m
}
