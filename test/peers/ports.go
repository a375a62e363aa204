package peers

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1. The port is
// released before FreePort returns, so another process may take it first;
// Start functions that take a port report that as a startup failure.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("asking the kernel for a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portOrFree is port, or a free one when port is 0.
func portOrFree(port int) (int, error) {
	if port < 0 || port > 65535 {
		return 0, fmt.Errorf("port %d is out of range 0-65535", port)
	}
	if port != 0 {
		return port, nil
	}
	return FreePort()
}

// probeHTTP makes a readiness probe that GETs url and accepts any response
// for which ok returns nil (any response at all when ok is nil).
func probeHTTP(url string, ok func(*http.Response, []byte) error) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := probeTransport.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("reading GET %s: %w", url, err)
		}
		if ok == nil {
			return nil
		}
		return ok(resp, body)
	}
}

// probeTransport makes one connection per probe (no idle connections left
// to a peer that is later stopped) and never uses a proxy.
var probeTransport = &http.Transport{DisableKeepAlives: true}
