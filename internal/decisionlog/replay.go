package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Difference is one field of a result that changed on replay.
type Difference struct {
	Field    string `json:"field"`
	Recorded string `json:"recorded"`
	Now      string `json:"now"`
}

// Compare lists the fields in which now differs from recorded.
func Compare(recorded, now *ResultDoc) []Difference {
	var out []Difference
	add := func(field, a, b string) {
		if a != b {
			out = append(out, Difference{Field: field, Recorded: a, Now: b})
		}
	}
	add("outcome", recorded.Outcome, now.Outcome)
	add("reason", recorded.Reason, now.Reason)
	add("grant", recorded.Grant, now.Grant)
	add("masking_profile", recorded.MaskingProfile, now.MaskingProfile)
	add("record", strconv.FormatBool(recorded.Record), strconv.FormatBool(now.Record))
	ra, na := recorded.Approval, now.Approval
	switch {
	case ra == nil && na == nil:
	case ra == nil || na == nil:
		add("approval", approvalString(ra), approvalString(na))
	default:
		add("approval.approver_groups", fmt.Sprint(ra.ApproverGroups), fmt.Sprint(na.ApproverGroups))
		add("approval.threshold", strconv.Itoa(ra.Threshold), strconv.Itoa(na.Threshold))
		add("approval.grant_duration", ra.GrantDuration, na.GrantDuration)
		add("approval.single_use", strconv.FormatBool(ra.SingleUse), strconv.FormatBool(na.SingleUse))
		add("approval.pin_arguments", strconv.FormatBool(ra.PinArguments), strconv.FormatBool(na.PinArguments))
		add("approval.reason_required", strconv.FormatBool(ra.ReasonRequired), strconv.FormatBool(na.ReasonRequired))
		if !slices.Equal(ra.BreakGlassGroups, na.BreakGlassGroups) {
			add("approval.break_glass_groups", fmt.Sprint(ra.BreakGlassGroups), fmt.Sprint(na.BreakGlassGroups))
		}
	}
	return out
}

func approvalString(a *ApprovalDoc) string {
	if a == nil {
		return "none"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

// ErrNotFound is returned by Find when no record has the id.
var ErrNotFound = errors.New("no record with that decision id")

// Find reads a decision log (one JSON record a line, as the stdout and
// file sinks write, or JSON arrays, as the http sink POSTs) and returns
// the last record with decision id id.
func Find(r io.Reader, id string) (*Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var found *Record
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || !bytes.Contains(b, []byte(strconv.Quote(id))) {
			continue
		}
		recs, err := ParseRecords(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		for _, rec := range recs {
			if rec.DecisionID == id {
				found = rec
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if found == nil {
		return nil, ErrNotFound
	}
	return found, nil
}

// ParseRecords reads one record, or an array of records.
func ParseRecords(b []byte) ([]*Record, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var recs []*Record
		if err := json.Unmarshal(b, &recs); err != nil {
			return nil, fmt.Errorf("decision log: %w", err)
		}
		return recs, nil
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	return []*Record{&rec}, nil
}

// ReadInput reads what `airlock policy eval --input` takes: a whole
// decision-log record (its input, and its result to compare with), or a
// bare input document (no result to compare with: rec is nil).
func ReadInput(b []byte) (input []byte, rec *Record, err error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, nil, fmt.Errorf("input: %w", err)
	}
	_, hasID := probe["decision_id"]
	in, hasInput := probe["input"]
	if hasID && hasInput {
		recs, err := ParseRecords(b)
		if err != nil {
			return nil, nil, err
		}
		return in, recs[0], nil
	}
	if hasID {
		return nil, nil, errors.New("input: the record has no input (decided before policy: nothing to evaluate)")
	}
	return b, nil, nil
}
