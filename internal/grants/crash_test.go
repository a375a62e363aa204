//go:build unix

package grants

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "AIRLOCK_GRANTS_CRASH_CHILD"

// TestCrashRecovery kills a process writing approvals with SIGKILL at
// random points, again and again, and checks after each kill that every
// approval it acknowledged (printed after Decide returned) is in the store.
func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	acked := map[string]string{} // request id → grant id
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		want := 1 + rng.IntN(4)
		deadline := time.After(30 * time.Second)
		for n := 0; n < want; {
			select {
			case l, ok := <-lines:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("round %d: the child stopped: %s", round, stderr.String())
				}
				if id, grant, ok := parseAck(l); ok {
					acked[id] = grant
					n++
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("round %d: no acknowledgement in 30s: %s", round, stderr.String())
			}
		}
		// Kill at a random point: often in the middle of the next write.
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for l := range lines { // acknowledgements that made it out before the kill count too
			if id, grant, ok := parseAck(l); ok {
				acked[id] = grant
			}
		}
		_ = cmd.Wait()

		st, err := OpenFileStore(dir, FileStoreOptions{})
		if err != nil {
			t.Fatalf("round %d: the store does not open after a kill: %v", round, err)
		}
		snap := load(t, st)
		st.Close()
		reqs := map[string]Request{}
		for _, r := range snap.Requests {
			reqs[r.ID] = r
		}
		grants := map[string]Grant{}
		for _, g := range snap.Grants {
			grants[g.ID] = g
		}
		for id, grant := range acked {
			r, ok := reqs[id]
			if !ok || r.State != RequestApproved || r.GrantID != grant {
				t.Fatalf("round %d: acknowledged approval of %s lost: stored %+v", round, id, r)
			}
			if g, ok := grants[grant]; !ok || g.State != GrantActive || g.RequestID != id {
				t.Fatalf("round %d: grant %s of acknowledged approval %s lost: stored %+v", round, grant, id, g)
			}
		}
	}
	t.Logf("%d acknowledged approvals survived 8 kills", len(acked))
}

func parseAck(l string) (string, string, bool) {
	f := strings.Fields(l)
	if len(f) != 3 || f[0] != "ack" {
		return "", "", false
	}
	return f[1], f[2], true
}

// crashChild opens requests and approves them until it is killed, printing
// each approval once Decide has returned.
func crashChild(dir string) {
	time.AfterFunc(30*time.Second, func() { os.Exit(3) }) // never outlive the parent by long
	st, err := OpenFileStore(dir, FileStoreOptions{CompactBytes: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg := Defaults()
	cfg.MaxPendingPerPrincipal = 1 << 20
	s, err := New(st, cfg, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		p := openParams("delete_repository", fmt.Sprintf(`{"repo":"r-%d-%d"}`, os.Getpid(), i), approval(nil))
		r, _, err := s.Open(ctx, p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		r, err = s.Decide(ctx, r.ID, bob, VerdictApprove, "")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, err := os.Stdout.WriteString("ack " + r.ID + " " + r.GrantID + "\n"); err != nil {
			os.Exit(2)
		}
	}
}
