package peers

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// testContext is a context bounded well under the package's time budget.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func startGoServer(t *testing.T, opts GoServerOptions) *GoServer {
	t.Helper()
	s, err := StartGoServer(testContext(t, 10*time.Second), opts)
	if err != nil {
		t.Fatalf("StartGoServer: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// listenAddrs is the local addresses of TCP sockets listening on port, from
// /proc/net/tcp and /proc/net/tcp6 (hex, as the kernel writes them:
// 0100007F is 127.0.0.1, 00000000 is any).
func listenAddrs(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	suffix := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 3 && fields[3] == "0A" && strings.HasSuffix(fields[1], suffix) {
				addrs = append(addrs, strings.TrimSuffix(fields[1], suffix))
			}
		}
	}
	return addrs
}
