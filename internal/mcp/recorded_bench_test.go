package mcp

import (
	"encoding/json"
	"strings"
	"testing"
)

// A ~4 KiB tool result, as ext_proc records it.
var recordedResult = []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"` +
	strings.Repeat(`{\"number\": 1347, \"title\": \"Found a bug\", \"state\": \"open\"}, `, 60) + `"}],"isError":false}}`)

// BenchmarkReadRecorded is ReadRecorded on a tool result; .../valid is
// ReadValidRecorded (what ext_proc uses on masked JSON), .../unmarshal
// the json.Unmarshal ReadRecorded used alone before.
func BenchmarkReadRecorded(b *testing.B) {
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(recordedResult)))
		b.ReportAllocs()
		for b.Loop() {
			ReadRecorded(recordedResult)
		}
	})
	b.Run("valid", func(b *testing.B) {
		b.SetBytes(int64(len(recordedResult)))
		b.ReportAllocs()
		for b.Loop() {
			ReadValidRecorded(recordedResult)
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(recordedResult)))
		b.ReportAllocs()
		for b.Loop() {
			var r recordedShape
			_ = json.Unmarshal(recordedResult, &r)
		}
	})
}
