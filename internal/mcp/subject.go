package mcp

import (
	"bytes"
	"encoding/json"
)

// This file is the one classifier of what an MCP request acts on — its
// subject: the tool of tools/call, the prompt of prompts/get, the resource
// URI of resources/read, resources/subscribe and resources/unsubscribe,
// and the prompt or resource a completion/complete refers to. The strict
// parser (message.go) fills Message.Tool, Prompt and URI by this table;
// ext_authz's decisions, the metadata it hands ext_proc and ext_proc's
// audit events all name a call by Subject.

// target is what a request method acts on.
type target uint8

const (
	targetNone     target = iota
	targetTool            // params.name, a tool
	targetPrompt          // params.name, a prompt
	targetResource        // params.uri, a resource
	targetRef             // params.ref, a prompt ("ref/prompt") or a resource ("ref/resource")
)

// targetOf is what requests of method act on.
func targetOf(method string) target {
	switch method {
	case "tools/call":
		return targetTool
	case "prompts/get":
		return targetPrompt
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return targetResource
	case "completion/complete":
		return targetRef
	}
	return targetNone
}

// HasSubject reports whether requests of method act on a named tool,
// prompt or resource.
func HasSubject(method string) bool { return targetOf(method) != targetNone }

// Subject is what m acts on: the tool name, prompt name or resource URI
// (or URI template, for a completion); "" for a message that acts on none.
// It is the one name the audit trail and ext_authz's metadata file a call
// under (the "tool" column and key).
func (m *Message) Subject() string {
	switch {
	case m.Tool != "":
		return m.Tool
	case m.Prompt != "":
		return m.Prompt
	default:
		return m.URI
	}
}

// recordedShape is what ReadRecorded takes of a message.
type recordedShape struct {
	Method string          `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
		Ref  struct {
			Type string `json:"type"`
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"ref"`
	} `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// ReadRecorded reads one JSON-RPC message as the audit trail records it:
// leniently (it may be masked, cut, or a server's message in either
// direction) and for description only, never for a decision — decisions
// read requests with ParseHTTP. Kind, Method, ID (nil when absent or
// null), Tool, Prompt or URI by the same table as ParseHTTP, and Result or
// RPCError are filled as far as the bytes allow; what cannot be read is
// left empty.
func ReadRecorded(msg []byte) Message {
	var r recordedShape
	if !json.Valid(msg) || !decodeRecorded(msg, &r) {
		r = recordedShape{}
		_ = json.Unmarshal(msg, &r) // partial reads are what is recorded
	}
	m := Message{Method: r.Method, Result: r.Result, RPCError: r.Error}
	if len(r.ID) > 0 && !bytes.Equal(r.ID, []byte("null")) {
		m.ID = r.ID
	}
	switch {
	case m.Method != "" && m.ID != nil:
		m.Kind = KindRequest
	case m.Method != "":
		m.Kind = KindNotification
	default:
		m.Kind = KindResponse
	}
	if m.Kind != KindRequest {
		return m
	}
	switch targetOf(m.Method) {
	case targetTool:
		m.Tool = r.Params.Name
	case targetPrompt:
		m.Prompt = r.Params.Name
	case targetResource:
		m.URI = r.Params.URI
	case targetRef:
		switch r.Params.Ref.Type {
		case "ref/prompt":
			m.Prompt = r.Params.Ref.Name
		case "ref/resource":
			m.URI = r.Params.Ref.URI
		}
	}
	return m
}
