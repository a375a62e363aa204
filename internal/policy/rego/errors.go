package rego

import (
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// policyError flattens OPA's error types into positioned problems whose
// file names are paths on disk.
func (s *snapshot) policyError(op string, err error) *policy.PolicyError {
	pe := &policy.PolicyError{Op: op, Dir: s.dir}
	s.flatten(err, &pe.Problems)
	if len(pe.Problems) == 0 {
		pe.Problems = []string{err.Error()}
	}
	return pe
}

func (s *snapshot) flatten(err error, out *[]string) {
	if err == nil {
		return
	}
	var (
		astErrs    ast.Errors
		astErr     *ast.Error
		loadErrs   loader.Errors
		regoErrs   oparego.Errors
		topErr     *topdown.Error
		joined     interface{ Unwrap() []error }
		policyErrs *policy.PolicyError
	)
	switch {
	case errors.As(err, &policyErrs):
		*out = append(*out, policyErrs.Problems...)
	case errors.As(err, &loadErrs):
		for _, e := range loadErrs {
			s.flatten(e, out)
		}
	case errors.As(err, &regoErrs):
		for _, e := range regoErrs {
			s.flatten(e, out)
		}
	case errors.As(err, &astErrs):
		for _, e := range astErrs {
			*out = append(*out, s.describe(e.Location, e.Code, e.Message, e.Details))
		}
	case errors.As(err, &astErr):
		*out = append(*out, s.describe(astErr.Location, astErr.Code, astErr.Message, astErr.Details))
	case errors.As(err, &topErr):
		*out = append(*out, s.describe(topErr.Location, topErr.Code, topErr.Message, nil))
	case errors.As(err, &joined):
		for _, e := range joined.Unwrap() {
			s.flatten(e, out)
		}
	default:
		*out = append(*out, err.Error())
	}
}

// describe renders one positioned problem as file:line:col: code: message,
// with any detail lines OPA adds (such as the offending source line).
func (s *snapshot) describe(loc *ast.Location, code, msg string, details ast.ErrorDetails) string {
	var b strings.Builder
	if loc != nil {
		file := s.path(loc.File)
		if file == "" {
			file = "<query>"
		}
		fmt.Fprintf(&b, "%s:%d:%d: ", file, loc.Row, loc.Col)
	}
	b.WriteString(code)
	b.WriteString(": ")
	b.WriteString(msg)
	if details != nil {
		for _, l := range details.Lines() {
			b.WriteString("\n\t\t")
			b.WriteString(l)
		}
	}
	return b.String()
}
