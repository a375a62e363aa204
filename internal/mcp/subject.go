package mcp

import (
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
