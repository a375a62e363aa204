package mcp

import "encoding/json"

// JSON-RPC error response bodies for the gateway's deny responses.

type wireError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

type wireErrorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   wireError       `json:"error"`
}

// ErrorResponse returns the body of a JSON-RPC 2.0 error response. id is
// the raw id of the request it answers; when it is nil or not a JSON string
// or number it is written as null (the id is unknown). data is marshalled
// with encoding/json and omitted when nil or when it cannot be marshalled.
func ErrorResponse(id json.RawMessage, code int, message string, data any) []byte {
	resp := wireErrorResponse{JSONRPC: "2.0", ID: idOrNull(id), Error: wireError{Code: code, Message: message, Data: data}}
	b, err := json.Marshal(resp)
	if err != nil {
		resp.Error.Data = nil
		b, _ = json.Marshal(resp) // only ints, strings and a checked id remain: cannot fail
	}
	return b
}

// Response returns the JSON-RPC error response body for e.
func (e *Error) Response() []byte { return ErrorResponse(e.ID, e.Code, e.Message, e.Data) }

// idOrNull returns id when it is exactly one JSON string or number, else null.
func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) > 0 {
		var s scanner
		s.init(id)
		c := id[0]
		if (c == '"' || c == '-' || isDigit(c)) && s.value() && s.i == len(id) {
			return id
		}
	}
	return json.RawMessage("null")
}

// urlElicitation is one entry of URLElicitationRequiredError's
// data.elicitations (ElicitRequestURLParams, schema/2025-11-25/schema.ts).
type urlElicitation struct {
	Mode          string `json:"mode"`
	ElicitationID string `json:"elicitationId"`
	URL           string `json:"url"`
	Message       string `json:"message"`
}

type urlElicitationData struct {
	Elicitations []urlElicitation `json:"elicitations"`
}

// URLElicitationRequired returns the body of an MCP URLElicitationRequiredError
// (code -32042, schema/2025-11-25/schema.ts): the client is asked to open url
// (e.g. an approval page) and may retry the request once that is done.
// message is both the error message and the elicitation's message shown to
// the user. The error exists in protocol 2025-11-25 only; 2026-07-28
// reserves -32042 and has no equivalent error.
func URLElicitationRequired(id json.RawMessage, message, url, elicitationID string) []byte {
	return ErrorResponse(id, CodeURLElicitationNeeded, message, urlElicitationData{
		Elicitations: []urlElicitation{{Mode: "url", ElicitationID: elicitationID, URL: url, Message: message}},
	})
}
