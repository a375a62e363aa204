package wire

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

// Keys of the Decision in AuthzNamespace.
const (
	KeyDecisionID     = "decision_id"
	KeyTarget         = "target"
	KeyPrincipal      = "principal"
	KeyClientID       = "client_id"
	KeyIssuer         = "issuer"
	KeyMaskingProfile = "masking_profile"
	KeyRecord         = "record"
	KeyPolicyVersion  = "policy_version"
	KeyProtocol       = "protocol"
	KeySessionID      = "session_id"
	KeyGrant          = "grant"
	KeyMethod         = "method"
	KeyTool           = "tool"
	KeyBatch          = "batch"
	KeyMethods        = "methods"
	KeyTools          = "tools"
	KeyIDs            = "ids"
)

// Decision is what ext_authz decided about an allowed request, as Envoy
// carries it to ext_proc in dynamic metadata (AuthzNamespace). ext_proc
// masks and records with it; operators can also log it from Envoy's
// access log (%DYNAMIC_METADATA(envoy.filters.http.ext_authz:principal)%).
type Decision struct {
	DecisionID     string
	Target         string
	Principal      string // the token's subject
	ClientID       string
	Issuer         string
	MaskingProfile string
	// Record says whether policy wants the exchange recorded. Read as
	// true when absent: a decision that does not say is recorded.
	Record        bool
	PolicyVersion string
	Protocol      string // MCP protocol version of the request
	SessionID     string // Mcp-Session-Id, when there is one
	Grant         string // the grant that allowed the call, if any
	// Method and Tool are the first message's (the only one unless Batch);
	// Tool is the tool name, prompt name or resource URI the call names.
	Method string
	Tool   string
	// Batch is set for a JSON-RPC batch; Methods, Tools and IDs then list
	// every message in order ("" where a message has no tool or id).
	Batch   bool
	Methods []string
	Tools   []string
	IDs     []string
}

// Fields is the Decision as the map ext_authz puts in its response's
// dynamic metadata (values are what structpb.NewStruct takes). Empty
// optional fields are left out.
func (d *Decision) Fields() map[string]any {
	m := map[string]any{
		KeyDecisionID:     d.DecisionID,
		KeyTarget:         d.Target,
		KeyPrincipal:      d.Principal,
		KeyClientID:       d.ClientID,
		KeyIssuer:         d.Issuer,
		KeyMaskingProfile: d.MaskingProfile,
		KeyRecord:         d.Record,
		KeyPolicyVersion:  d.PolicyVersion,
		KeyProtocol:       d.Protocol,
	}
	opt := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	opt(KeySessionID, d.SessionID)
	opt(KeyGrant, d.Grant)
	opt(KeyMethod, d.Method)
	opt(KeyTool, d.Tool)
	if d.Batch {
		m[KeyBatch] = true
		m[KeyMethods] = anyList(d.Methods)
		m[KeyTools] = anyList(d.Tools)
		m[KeyIDs] = anyList(d.IDs)
	}
	return m
}

// errInvalidUTF8 is Struct's refusal, as structpb.NewStruct refuses.
var errInvalidUTF8 = errors.New("proto: invalid UTF-8 in string")

// Struct is structpb.NewStruct(d.Fields()), built directly: no map of
// interfaces in between, and the values and their kinds allocated in two
// blocks rather than one by one (ext_authz builds one per allowed Check).
// Like NewStruct it refuses a string that is not valid UTF-8 (which
// protobuf could not send).
func (d *Decision) Struct() (*structpb.Struct, error) {
	for _, v := range [...]string{d.DecisionID, d.Target, d.Principal, d.ClientID, d.Issuer, d.MaskingProfile,
		d.PolicyVersion, d.Protocol, d.SessionID, d.Grant, d.Method, d.Tool} {
		if !utf8.ValidString(v) {
			return nil, errInvalidUTF8
		}
	}
	if d.Batch {
		for _, l := range [...][]string{d.Methods, d.Tools, d.IDs} {
			for _, v := range l {
				if !utf8.ValidString(v) {
					return nil, errInvalidUTF8
				}
			}
		}
	}
	n := 8 // the string fields always set
	for _, v := range [...]string{d.SessionID, d.Grant, d.Method, d.Tool} {
		if v != "" {
			n++
		}
	}
	vals := make([]structpb.Value, n)
	strs := make([]structpb.Value_StringValue, n)
	fields := make(map[string]*structpb.Value, n+5)
	i := 0
	put := func(k, v string) {
		strs[i].StringValue = v
		vals[i].Kind = &strs[i]
		fields[k] = &vals[i]
		i++
	}
	opt := func(k, v string) {
		if v != "" {
			put(k, v)
		}
	}
	put(KeyDecisionID, d.DecisionID)
	put(KeyTarget, d.Target)
	put(KeyPrincipal, d.Principal)
	put(KeyClientID, d.ClientID)
	put(KeyIssuer, d.Issuer)
	put(KeyMaskingProfile, d.MaskingProfile)
	put(KeyPolicyVersion, d.PolicyVersion)
	put(KeyProtocol, d.Protocol)
	fields[KeyRecord] = structpb.NewBoolValue(d.Record)
	opt(KeySessionID, d.SessionID)
	opt(KeyGrant, d.Grant)
	opt(KeyMethod, d.Method)
	opt(KeyTool, d.Tool)
	if d.Batch {
		fields[KeyBatch] = structpb.NewBoolValue(true)
		fields[KeyMethods] = stringList(d.Methods)
		fields[KeyTools] = stringList(d.Tools)
		fields[KeyIDs] = stringList(d.IDs)
	}
	return &structpb.Struct{Fields: fields}, nil
}

// stringList is a ListValue of s's strings.
func stringList(s []string) *structpb.Value {
	vals := make([]*structpb.Value, len(s))
	for i, v := range s {
		vals[i] = structpb.NewStringValue(v)
	}
	return structpb.NewListValue(&structpb.ListValue{Values: vals})
}

// ReadDecision reads a Decision from the AuthzNamespace fields Envoy
// forwarded (nil or empty: the zero Decision with Record true).
func ReadDecision(fields map[string]*structpb.Value) Decision {
	str := func(k string) string { return fields[k].GetStringValue() }
	d := Decision{
		DecisionID:     str(KeyDecisionID),
		Target:         str(KeyTarget),
		Principal:      str(KeyPrincipal),
		ClientID:       str(KeyClientID),
		Issuer:         str(KeyIssuer),
		MaskingProfile: str(KeyMaskingProfile),
		Record:         true,
		PolicyVersion:  str(KeyPolicyVersion),
		Protocol:       str(KeyProtocol),
		SessionID:      str(KeySessionID),
		Grant:          str(KeyGrant),
		Method:         str(KeyMethod),
		Tool:           str(KeyTool),
		Batch:          fields[KeyBatch].GetBoolValue(),
		Methods:        strList(fields[KeyMethods]),
		Tools:          strList(fields[KeyTools]),
		IDs:            strList(fields[KeyIDs]),
	}
	if v, ok := fields[KeyRecord]; ok {
		d.Record = v.GetBoolValue()
	}
	return d
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func strList(v *structpb.Value) []string {
	l := v.GetListValue().GetValues()
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.GetStringValue()
	}
	return out
}
