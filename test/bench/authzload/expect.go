package main

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
)

// Expect checks one answer. A benchmark counts a wrong answer as an error:
// a target that denies everything must not look fast.
type Expect interface {
	// Check returns why resp is not the answer it must be to it. The
	// error never holds a header value (the allow carries a credential).
	Check(resp *authv3.CheckResponse, it *Item) error
}

// ExpectOK accepts any allow: status OK with an OkHttpResponse. It is what
// the no-op server answers.
type ExpectOK struct{}

// Check implements Expect.
func (ExpectOK) Check(resp *authv3.CheckResponse, _ *Item) error {
	return allowed(resp)
}

// ExpectAirlockAllow is airlock's allow of the bench route: status OK, the
// caller's principal in x-airlock-principal, and, when Credential is set,
// the upstream credential in place of the agent's Authorization.
type ExpectAirlockAllow struct {
	Credential string // the whole authorization value airlock must set; "" skips the check
}

// Check implements Expect.
func (e ExpectAirlockAllow) Check(resp *authv3.CheckResponse, it *Item) error {
	if err := allowed(resp); err != nil {
		return err
	}
	var principal, authz string
	var sawPrincipal, sawAuthz bool
	for _, h := range resp.GetOkResponse().GetHeaders() {
		switch h.GetHeader().GetKey() {
		case "x-airlock-principal":
			principal, sawPrincipal = h.GetHeader().GetValue(), true
		case "authorization":
			authz, sawAuthz = h.GetHeader().GetValue(), true
		}
	}
	if !sawPrincipal {
		return fmt.Errorf("allow without an x-airlock-principal header")
	}
	if principal != it.Subject {
		return fmt.Errorf("allow names principal %q, want %q", principal, it.Subject)
	}
	if e.Credential != "" {
		if !sawAuthz {
			return fmt.Errorf("allow does not set the upstream authorization header")
		}
		if authz != e.Credential {
			return fmt.Errorf("allow sets authorization to a value that is not the upstream credential")
		}
	}
	return nil
}

func allowed(resp *authv3.CheckResponse) error {
	if c := resp.GetStatus().GetCode(); c != int32(code.Code_OK) {
		msg := resp.GetStatus().GetMessage()
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		return fmt.Errorf("denied: grpc status %s, http %d: %s", code.Code(c), resp.GetDeniedResponse().GetStatus().GetCode(), msg)
	}
	if resp.GetOkResponse() == nil {
		return fmt.Errorf("status OK without an ok_response")
	}
	return nil
}
