package xds_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/test/envoydriver"
	"github.com/airlock-mcp/airlock/xds"
)

// The load benchmark runs the ADS client in a child process (this test
// binary, re-run with benchClientEnv set), so the CPU time and heap the
// parent measures are the server's alone.
const (
	benchClientEnv = "AIRLOCK_XDS_BENCH_CLIENT" // ADS address
	benchDeltaEnv  = "AIRLOCK_XDS_BENCH_DELTA"  // "1" for delta
	benchPrefix    = "grant/bench-"             // the grants a benchmark changes
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(benchClientEnv); addr != "" {
		os.Exit(benchClient(addr, os.Getenv(benchDeltaEnv) == "1"))
	}
	os.Exit(m.Run())
}

// benchClient holds the routes like Envoy and reports, on stdout, each
// scoped-routes response: "R <bytes> <err> <changed bench scopes>", where
// a removed scope is prefixed with "-". After the first one (the initial
// state) it prints "READY <scopes held>". Only OnResponse writes stdout.
func benchClient(addr string, delta bool) int {
	out := bufio.NewWriter(os.Stdout)
	held, ready := 0, false
	a, err := envoydriver.ConnectADS(addr, envoydriver.ADSOptions{
		Node: &corev3.Node{Id: "bench", Cluster: "airlock"}, Delta: delta, NoListener: true,
		OnResponse: func(r envoydriver.ADSResponse) {
			if r.TypeURL != resource.ScopedRouteType {
				return
			}
			if delta {
				held += len(r.Updated) - len(r.Removed)
			} else {
				held = len(r.Updated)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "R %d %v", r.Bytes, r.Err != nil)
			for _, n := range r.Updated {
				if strings.HasPrefix(n, benchPrefix) {
					b.WriteString(" " + n)
				}
			}
			for _, n := range r.Removed {
				if strings.HasPrefix(n, benchPrefix) {
					b.WriteString(" -" + n)
				}
			}
			fmt.Fprintln(out, b.String())
			if !ready {
				// The first scoped-routes response is the initial state.
				ready = true
				fmt.Fprintf(out, "READY %d\n", held)
			}
			out.Flush()
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := a.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Run until the parent closes stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	a.Close()
	return 0
}

// wireBytes counts the gRPC payload bytes the server sends.
type wireBytes struct{ n atomic.Int64 }

func (w *wireBytes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (w *wireBytes) HandleRPC(_ context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.OutPayload); ok {
		w.n.Add(int64(p.WireLength))
	}
}
func (w *wireBytes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (w *wireBytes) HandleConn(context.Context, stats.ConnStats)                       {}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchModel(b *testing.B, bound envoy.Bound) *envoy.Model {
	m, err := envoy.NewModel(benchConfig(b), bound)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchConfig(b *testing.B) *config.Config {
	src := fmt.Sprintf(`
public_url: http://127.0.0.1:10000
listen: {authz: "127.0.0.1:9001", http: "", proc: "", xds: "127.0.0.1:0"}
issuers: [{name: test, url: "https://issuer.test"}]
targets:
  - {name: github, upstream: "http://127.0.0.1:3001/mcp"}
  - {name: everything, upstream: "http://127.0.0.1:3002/mcp"}
policy: {dir: %q}
`, b.TempDir())
	cfg, err := config.Parse(strings.NewReader(src), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func staticGrants(n int) []xds.Grant {
	exp := time.Now().Add(24 * time.Hour)
	gs := make([]xds.Grant, n)
	for i := range gs {
		target := "github"
		if i%2 == 1 {
			target = "everything"
		}
		gs[i] = xds.Grant{ID: fmt.Sprintf("static-%06d", i), Target: target, Tool: "create_issue", Expiry: exp}
	}
	return gs
}

// BenchmarkGrantChange: with N live grants and one ADS client (another
// process) connected, each op issues or revokes one grant and waits until
// the client holds the change. Reported: latency p50/p99, the server's
// CPU time and wire bytes per change, and the server's heap with N grants.
func BenchmarkGrantChange(b *testing.B) {
	for _, mode := range []string{"delta", "sotw"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/grants=%d", mode, n), func(b *testing.B) { benchGrantChange(b, mode == "delta", n) })
		}
	}
}

func benchGrantChange(b *testing.B, delta bool, n int) {
	srv, err := xds.New(benchModel(b, envoy.Bound{ListenAddress: "127.0.0.1:0"}), xds.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	if err := srv.SetGrants(staticGrants(n)); err != nil {
		b.Fatal(err)
	}
	wb := &wireBytes{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(grpc.StatsHandler(wb))
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchClientEnv+"="+ln.Addr().String(), benchDeltaEnv+"="+map[bool]string{true: "1"}[delta])
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func(what string, match func(string) bool) {
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					b.Fatalf("the ADS client exited while waiting for %s", what)
				}
				if strings.Contains(l, " true") && strings.HasPrefix(l, "R ") {
					b.Fatalf("the ADS client NACKed: %s", l)
				}
				if match(l) {
					return
				}
			case <-timeout:
				b.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("READY", func(l string) bool {
		if !strings.HasPrefix(l, "READY ") {
			return false
		}
		if got, _ := strconv.Atoi(strings.TrimPrefix(l, "READY ")); got != n+1 {
			b.Fatalf("client holds %d scopes, want %d", got, n+1)
		}
		return true
	})

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := ms.HeapAlloc

	exp := time.Now().Add(time.Hour)
	lat := make([]time.Duration, 0, b.N)
	bytes0, cpu0 := wb.n.Load(), cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i/2)
		start := time.Now()
		if i%2 == 0 {
			if err := srv.UpsertGrant(xds.Grant{ID: id, Target: "github", Expiry: exp}); err != nil {
				b.Fatal(err)
			}
			wait("issue of "+id, func(l string) bool {
				return strings.HasSuffix(l, " grant/"+id) || strings.Contains(l, " grant/"+id+" ")
			})
		} else {
			if err := srv.RemoveGrant(id); err != nil {
				b.Fatal(err)
			}
			// (A SotW client notices the removal as absence from the full state.)
			wait("revoke of "+id, func(l string) bool {
				return strings.HasSuffix(l, " -grant/"+id) || strings.Contains(l, " -grant/"+id+" ")
			})
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	sent := wb.n.Load() - bytes0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1000, "server-cpu-ms/change")
	b.ReportMetric(float64(sent)/float64(b.N), "bytes/change")
	b.ReportMetric(float64(heap)/(1<<20), "server-heap-MB")
}

// BenchmarkUpsertGrant is the server's synchronous cost of issuing and
// revoking a grant with N others live and no client connected.
func BenchmarkUpsertGrant(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			srv, err := xds.New(benchModel(b, envoy.Bound{}), xds.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			if err := srv.SetGrants(staticGrants(n)); err != nil {
				b.Fatal(err)
			}
			exp := time.Now().Add(time.Hour)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := "bench-" + strconv.Itoa(i)
				if err := srv.UpsertGrant(xds.Grant{ID: id, Target: "github", Expiry: exp}); err != nil {
					b.Fatal(err)
				}
				if err := srv.RemoveGrant(id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
