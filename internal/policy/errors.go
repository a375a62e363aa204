package policy

import (
	"fmt"
	"strings"
)

// PolicyError is a problem found while loading, compiling or evaluating a
// policy. Each entry of Problems is one "file:line:col: code: message"
// line (or a message without position when OPA gives none).
type PolicyError struct {
	Op       string // "load", "compile", "query" or "eval"
	Dir      string
	Problems []string
}

func (e *PolicyError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("policy %s %s: %s", e.Op, e.Dir, e.Problems[0])
	}
	return fmt.Sprintf("policy %s %s: %d problems:\n\t%s", e.Op, e.Dir, len(e.Problems), strings.Join(e.Problems, "\n\t"))
}
