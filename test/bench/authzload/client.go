package main

import (
	"context"
	"fmt"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// checkMethod is the full gRPC method name of Authorization.Check.
const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// preEncoded is a message already in protobuf wire form.
type preEncoded []byte

// wireCodec sends pre-encoded requests as they are and decodes responses
// with protobuf. It is named "proto" so the content-type on the wire is
// the ordinary application/grpc+proto every server accepts.
type wireCodec struct{}

func (wireCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *preEncoded:
		return *m, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("wireCodec: cannot encode %T", v)
}

func (wireCodec) Unmarshal(data []byte, v any) error {
	if r, ok := v.(leanAnswer); ok {
		return unmarshalCheckResponse(data, r.CheckResponse)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("wireCodec: cannot decode into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (wireCodec) Name() string { return "proto" }

// leanAnswer is a Check answer to decode without its dynamic_metadata
// (unmarshalCheckResponse): what the load loops ask for.
type leanAnswer struct{ *authv3.CheckResponse }

// checkResponseMetadata is CheckResponse.dynamic_metadata's field number.
const checkResponseMetadata = 4

// unmarshalCheckResponse decodes a Check answer without its
// dynamic_metadata: no Expect reads it, and decoding a
// google.protobuf.Struct by reflection (~7 µs and ~80 allocations for
// airlock's dozen keys) is CPU the driver would take from the cores it
// shares with the target, for every target alike. Every other field is
// decoded and checked as before; malformed framing is still an error.
func unmarshalCheckResponse(data []byte, r *authv3.CheckResponse) error {
	var kept []byte // nil until a dynamic_metadata field is dropped
	for rest, off := data, 0; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return fmt.Errorf("CheckResponse at byte %d: %w", off, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return fmt.Errorf("CheckResponse field %d at byte %d: %w", num, off, protowire.ParseError(m))
		}
		if num == checkResponseMetadata {
			if kept == nil {
				kept = append(make([]byte, 0, len(data)), data[:off]...)
			}
		} else if kept != nil {
			kept = append(kept, rest[:n+m]...)
		}
		rest, off = rest[n+m:], off+n+m
	}
	if kept == nil {
		kept = data
	}
	return proto.Unmarshal(kept, r)
}

// closeConns closes every connection of conns.
func closeConns(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// dial opens n separate HTTP/2 connections to addr (as several Envoy
// workers would) and waits until each is ready.
func dial(ctx context.Context, addr string, n int) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, n)
	closeAll := func() { closeConns(conns) }
	for range n {
		c, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(wireCodec{})),
		)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		conns = append(conns, c)
		c.Connect()
	}
	for _, c := range conns {
		for s := c.GetState(); s != connectivity.Ready; s = c.GetState() {
			if !c.WaitForStateChange(ctx, s) {
				closeAll()
				return nil, fmt.Errorf("connection to %s not ready (state %s): %w", addr, s, ctx.Err())
			}
		}
	}
	return conns, nil
}

// invoke sends one pre-encoded Check and decodes the answer into resp,
// whole, or without its dynamic_metadata when lean.
func invoke(ctx context.Context, c *grpc.ClientConn, raw []byte, resp *authv3.CheckResponse, lean bool) error {
	req := preEncoded(raw)
	if lean {
		return c.Invoke(ctx, checkMethod, &req, leanAnswer{resp})
	}
	return c.Invoke(ctx, checkMethod, &req, resp)
}

// waitReady sends the first request of w until the target answers it as
// expected, or the timeout passes. exited, when not nil, reports a target
// process that died meanwhile.
func waitReady(ctx context.Context, addr string, w *Workload, exp Expect, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(wireCodec{})),
	)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		resp := &authv3.CheckResponse{}
		err := invoke(cctx, c, w.Items[0].Raw, resp, false)
		ccancel()
		if err == nil {
			if err = exp.Check(resp, &w.Items[0]); err == nil {
				return nil
			}
			// Reachable but wrong: a policy may still be loading.
			err = fmt.Errorf("wrong answer to the first request: %w", err)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s: %w", addr, timeout, last)
		case <-exited:
			return fmt.Errorf("the process serving %s exited: %w", addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
