package mcp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var recordedSeeds = []string{
	`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_issue","arguments":{"n":[1,2,{"x":"y\"z"}]}}}`,
	`{"jsonrpc":"2.0","id":"a\"b","result":{"content":[{"type":"text","text":"{\"k\": [1, 2]}"}],"isError":false}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`,
	`{"method":"notifications/progress","params":null}`,
	`{"method":"completion/complete","id":1,"params":{"ref":{"type":"ref/prompt","name":"p"}}}`,
	`{"method":"resources/read","id":1,"params":{"uri":"file:///x","ref":null,"name":null}}`,
	`{"Method":"tools/call","ID":1}`, `{"method":"t\u00e9","id":1}`, `{"method":5,"id":1,"params":{"name":"x"}}`,
	`{"params":{"name":"a"},"params":{"uri":"b"},"id":1,"method":"tools/call"}`,
	` { "id" : 1 , "method" : "tools/call" , "params" : { "name" : "x" } , "result" : [ 1 , 2 ] } `,
	`[1,2]`, `"s"`, `null`, `{}`, `{"id":1.5e3,"result":true,"error":false}`, `{"méthode":1,"method":"x"}`,
	`{"params":"str","method":"a"}`, `{"params":{"ref":[1]},"method":"a"}`, `{"id":[],"result":{}}`,
}

// FuzzDecodeRecorded: ReadRecorded's one-pass reader gives what
// json.Unmarshal gives, or gives up.
func FuzzDecodeRecorded(f *testing.F) {
	for _, s := range recordedSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if !json.Valid(msg) {
			return
		}
		var want, got recordedShape
		_ = json.Unmarshal(msg, &want)
		if !decodeRecorded(msg, &got) {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-json.Unmarshal +decodeRecorded):\n%s", msg, diff)
		}
	})
}

// TestDecodeRecordedReads: the common messages are read by the one-pass
// reader, not handed to json.Unmarshal.
func TestDecodeRecordedReads(t *testing.T) {
	for _, s := range recordedSeeds[:6] {
		var r recordedShape
		if !decodeRecorded([]byte(s), &r) {
			t.Errorf("gave up on %s", s)
		}
	}
}

// FuzzReadValidRecorded: on valid JSON, ReadValidRecorded reads what
// ReadRecorded reads; on anything else it does not panic.
func FuzzReadValidRecorded(f *testing.F) {
	for _, s := range recordedSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`{"id":`, `{"method":"a","params":{`, `{"id":1,"result":[`, `{"a"`, `{`, ``, `{"id":"x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got := ReadValidRecorded(msg)
		if !json.Valid(msg) {
			return
		}
		if diff := cmp.Diff(ReadRecorded(msg), got); diff != "" {
			t.Errorf("%s (-ReadRecorded +ReadValidRecorded):\n%s", msg, diff)
		}
	})
}

// TestReadRecordedCopies: ReadRecorded's raw values are copies of the
// message (a caller may reuse its buffer), ReadValidRecorded's point
// into it.
func TestReadRecordedCopies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		read  func([]byte) Message
		alias bool
	}{
		{"ReadRecorded", ReadRecorded, false},
		{"ReadValidRecorded", ReadValidRecorded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(`{"jsonrpc":"2.0","id":7,"result":{"ok":true}}`)
			m := tc.read(msg)
			if string(m.ID) != "7" || string(m.Result) != `{"ok":true}` {
				t.Fatalf("read id %s result %s", m.ID, m.Result)
			}
			for i := range msg {
				msg[i] = ' '
			}
			if changed := string(m.ID) != "7" || string(m.Result) != `{"ok":true}`; changed != tc.alias {
				t.Errorf("values changed with the message: %v, want %v", changed, tc.alias)
			}
		})
	}
}

// TestDecodeRecordedFoldedKeys: a key json.Unmarshal would match to a
// field case-insensitively is left to json.Unmarshal, whatever its case.
func TestDecodeRecordedFoldedKeys(t *testing.T) {
	for _, s := range []string{`{"Method":"a"}`, `{"ID":1}`, `{"paRams":{}}`, `{"method":"a","params":{"NAME":"x"}}`,
		`{"method":"a","params":{"ref":{"Type":"x"}}}`, `{"RESULT":1}`, `{"erroR":1}`, `{"method":"a","params":{"Uri":"x"}}`} {
		var r recordedShape
		if decodeRecorded([]byte(s), &r) {
			t.Errorf("read %s itself", s)
		}
	}
	for _, s := range []string{`{"methods":"a","Idx":1,"paramsX":2}`, `{"method":"tools/call","id":1,"params":{"name":"t","Arguments":{}}}`} {
		var want, got recordedShape
		_ = json.Unmarshal([]byte(s), &want)
		if !decodeRecorded([]byte(s), &got) {
			t.Errorf("gave up on %s", s)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-json.Unmarshal +decodeRecorded):\n%s", s, diff)
		}
	}
}
