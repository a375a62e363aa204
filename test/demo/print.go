package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

type printer struct{ w io.Writer }

func (p *printer) title(s string)          { fmt.Fprintf(p.w, "\n== %s\n", s) }
func (p *printer) kv(k, v string)          { fmt.Fprintf(p.w, "  %-34s %s\n", k+":", v) }
func (p *printer) note(s string)           { fmt.Fprintf(p.w, "  %s\n", s) }
func (p *printer) ok(f string, a ...any)   { fmt.Fprintf(p.w, "  ✓ "+f+"\n", a...) }
func (p *printer) deny(f string, a ...any) { fmt.Fprintf(p.w, "  ✗ "+f+"\n", a...) }
func (p *printer) hold(f string, a ...any) { fmt.Fprintf(p.w, "  ⏸ "+f+"\n", a...) }

// decisionLog keeps airlock's JSON log lines that record decisions.
type decisionLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []map[string]any
}

func (d *decisionLog) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf.Write(b)
	for {
		line, err := d.buf.ReadBytes('\n')
		if err != nil {
			d.buf.Write(line) // keep the partial line for the next write
			break
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == "decision" {
			d.lines = append(d.lines, m)
		}
	}
	return len(b), nil
}

func (d *decisionLog) print(p *printer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := bufio.NewWriter(p.w)
	fmt.Fprintf(w, "  %-8s %-17s %-10s %-11s %-26s %-18s %s\n", "time", "outcome", "subject", "target", "method", "tool", "reason")
	for _, m := range d.lines {
		ts := str(m["time"])
		if i := strings.Index(ts, "T"); i >= 0 && len(ts) >= i+9 {
			ts = ts[i+1 : i+9]
		}
		fmt.Fprintf(w, "  %-8s %-17s %-10s %-11s %-26s %-18s %s\n", ts, str(m["outcome"]), str(m["subject"]), str(m["target"]), str(m["method"]), str(m["tool"]), str(m["reason"]))
	}
	w.Flush()
	fmt.Fprintf(p.w, "  (%d decisions; each line carries a decision_id also sent to the agent and the upstream)\n", len(d.lines))
}

func str(v any) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(v)
}
