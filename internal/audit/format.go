package audit

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSessions prints sessions as a table, for `airlock sessions`.
func WriteSessions(w io.Writer, sums []SessionSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tPRINCIPAL\tCLIENT\tTARGET\tSTART (UTC)\tDURATION\tEVENTS\tREQUESTS\tDENIED\tERRORS\tMASKED")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n",
			orDash(s.SessionID), orDash(s.Principal), orDash(s.ClientID), orDash(s.Target),
			s.Start.UTC().Format("2006-01-02 15:04:05"), s.End.Sub(s.Start).Round(time.Millisecond),
			s.Events, s.Requests, s.Denied, s.Errors, s.Masked)
	}
	return tw.Flush()
}

// TimelineOptions choose what WriteTimeline shows.
type TimelineOptions struct {
	Payloads bool // print each message's (masked) payload under it
}

// WriteTimeline prints one session's events in order, for `airlock
// replay`: the first event's time, then each event's offset from it.
func WriteTimeline(w io.Writer, events []Event, opts TimelineOptions) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	first := events[0]
	fmt.Fprintf(w, "session %s  principal %s  client %s  target %s  started %s\n",
		orDash(first.SessionID), orDash(first.Principal), orDash(first.ClientID), orDash(first.Target),
		first.Time.UTC().Format(time.RFC3339Nano))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range events {
		var b strings.Builder
		fmt.Fprintf(&b, "+%.3fs\t%s\t%s", e.Time.Sub(first.Time).Seconds(), e.Direction, orDash(e.Method))
		if e.Tool != "" {
			b.WriteString(" " + e.Tool)
		}
		b.WriteByte('\t')
		if e.JSONRPCID != "" {
			b.WriteString("id=" + e.JSONRPCID)
		}
		b.WriteByte('\t')
		b.WriteString(orDash(e.Outcome))
		if e.Status != 0 {
			fmt.Fprintf(&b, " %d", e.Status)
		}
		b.WriteByte('\t')
		if e.LatencyMS > 0 {
			fmt.Fprintf(&b, "%.1fms", e.LatencyMS)
		}
		b.WriteByte('\t')
		if len(e.Masked) > 0 {
			b.WriteString("masked " + countsText(e.Masked))
		}
		if e.Truncated {
			fmt.Fprintf(&b, " (payload cut, %d bytes)", e.Bytes)
		}
		fmt.Fprintln(tw, strings.TrimRight(b.String(), "\t "))
		if opts.Payloads && e.Payload != "" {
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "    %s\n", e.Payload)
		}
	}
	return tw.Flush()
}

func countsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
