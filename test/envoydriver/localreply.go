package envoydriver

import (
	"errors"
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// responseFlags maps the local replies the driver makes to Envoy's
// response flags (%RESPONSE_FLAGS%), for access-log filters.
var responseFlags = map[string]string{
	"route_not_found":           "NR",
	"cluster_not_found":         "NC",
	"ext_authz_denied":          "UAEX",
	"ext_authz_error":           "UAEX",
	"upstream_response_timeout": "UT",
	"upstream_reset_before_response_started{connection_failure}": "UF",
	"upstream_reset_before_response_started{overflow}":           "UO",
}

// supportedFlags are the flags a response_flag_filter may name here.
var supportedFlags = map[string]bool{"NR": true, "NC": true, "UAEX": true, "UT": true, "UF": true, "UO": true}

// replyMapper is a compiled http_connection_manager.proto ResponseMapper.
type replyMapper struct {
	filter  *replyFilter
	status  int // 0: keep
	body    *string
	headers []headerOp
}

// replyFilter is the subset of accesslog.proto AccessLogFilter a local
// reply mapper can use here: and/or, header, response flag and status code.
type replyFilter struct {
	and, or []*replyFilter
	header  *headerMatcher
	flags   map[string]bool
	status  func(int) bool
}

// compileLocalReply follows http_connection_manager.proto LocalReplyConfig:
// "The first matched mapper is used"; a mapper whose filter matches
// rewrites the status code, the body and adds headers.
func compileLocalReply(c *hcmv3.LocalReplyConfig) ([]*replyMapper, error) {
	if c == nil {
		return nil, nil
	}
	if c.GetBodyFormat() != nil {
		return nil, errors.New("local_reply_config.body_format is not supported")
	}
	var out []*replyMapper
	for i, m := range c.GetMappers() {
		where := fmt.Sprintf("local_reply_config.mappers[%d]", i)
		if m.GetBodyFormatOverride() != nil {
			return nil, fmt.Errorf("%s: body_format_override is not supported", where)
		}
		f, err := compileReplyFilter(m.GetFilter())
		if err != nil {
			return nil, fmt.Errorf("%s filter: %w", where, err)
		}
		rm := &replyMapper{filter: f}
		if m.GetStatusCode() != nil {
			rm.status = int(m.GetStatusCode().GetValue())
		}
		switch b := m.GetBody().GetSpecifier().(type) {
		case nil:
		case *corev3.DataSource_InlineString:
			rm.body = &b.InlineString
		case *corev3.DataSource_InlineBytes:
			s := string(b.InlineBytes)
			rm.body = &s
		default:
			return nil, fmt.Errorf("%s: body %T is not supported", where, b)
		}
		if rm.headers, err = compileRouteHeaderOptions(m.GetHeadersToAdd(), "headers_to_add"); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, rm)
	}
	return out, nil
}

func compileReplyFilter(f *accesslogv3.AccessLogFilter) (*replyFilter, error) {
	switch s := f.GetFilterSpecifier().(type) {
	case *accesslogv3.AccessLogFilter_AndFilter:
		subs, err := compileReplyFilters(s.AndFilter.GetFilters())
		return &replyFilter{and: subs}, err
	case *accesslogv3.AccessLogFilter_OrFilter:
		subs, err := compileReplyFilters(s.OrFilter.GetFilters())
		return &replyFilter{or: subs}, err
	case *accesslogv3.AccessLogFilter_HeaderFilter:
		hm, err := compileHeaderMatcher(s.HeaderFilter.GetHeader())
		if err != nil {
			return nil, err
		}
		return &replyFilter{header: hm}, nil
	case *accesslogv3.AccessLogFilter_ResponseFlagFilter:
		// accesslog.proto ResponseFlagFilter.flags: "If no flags are
		// specified, the filter will match any response flag."
		rf := &replyFilter{flags: map[string]bool{}}
		for _, fl := range s.ResponseFlagFilter.GetFlags() {
			if !supportedFlags[fl] {
				return nil, fmt.Errorf("response flag %q is not supported (supported: NR, NC, UAEX, UT, UF, UO)", fl)
			}
			rf.flags[fl] = true
		}
		return rf, nil
	case *accesslogv3.AccessLogFilter_StatusCodeFilter:
		cmp := s.StatusCodeFilter.GetComparison()
		if cmp.GetValue().GetRuntimeKey() != "" {
			return nil, errors.New("status_code_filter runtime_key is not supported")
		}
		v := int(cmp.GetValue().GetDefaultValue())
		switch cmp.GetOp() {
		case accesslogv3.ComparisonFilter_EQ:
			return &replyFilter{status: func(c int) bool { return c == v }}, nil
		case accesslogv3.ComparisonFilter_GE:
			return &replyFilter{status: func(c int) bool { return c >= v }}, nil
		case accesslogv3.ComparisonFilter_LE:
			return &replyFilter{status: func(c int) bool { return c <= v }}, nil
		}
		return nil, fmt.Errorf("status_code_filter op %s is not supported", cmp.GetOp())
	case nil:
		return nil, errors.New("filter_specifier is not set")
	default:
		return nil, fmt.Errorf("access log filter %T is not supported", s)
	}
}

func compileReplyFilters(fs []*accesslogv3.AccessLogFilter) ([]*replyFilter, error) {
	out := make([]*replyFilter, 0, len(fs))
	for _, f := range fs {
		c, err := compileReplyFilter(f)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *replyFilter) match(req *headerMap, lr *localReply) bool {
	switch {
	case f.and != nil:
		for _, s := range f.and {
			if !s.match(req, lr) {
				return false
			}
		}
		return true
	case f.or != nil:
		for _, s := range f.or {
			if s.match(req, lr) {
				return true
			}
		}
		return false
	case f.header != nil:
		return f.header.match(req)
	case f.flags != nil:
		fl, ok := responseFlags[lr.details]
		return ok && (len(f.flags) == 0 || f.flags[fl])
	case f.status != nil:
		return f.status(lr.status)
	}
	return false
}

// rewriteLocalReply follows LocalReplyImpl::rewrite, which Envoy applies in
// sendLocalReply before the reply goes through the encoder filters.
func rewriteLocalReply(ms []*replyMapper, req *headerMap, lr *localReply) *localReply {
	for _, m := range ms {
		if !m.filter.match(req, lr) {
			continue
		}
		out := *lr
		if m.status != 0 {
			out.status = m.status
		}
		if m.body != nil {
			out.body = *m.body
		}
		if len(m.headers) > 0 {
			out.headers = out.headers.clone()
			if out.headers == nil {
				out.headers = &headerMap{}
			}
			applyHeaderParser(out.headers, m.headers, nil)
		}
		return &out
	}
	return lr
}
