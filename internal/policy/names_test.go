package policy

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestNameWords(t *testing.T) {
	tests := []struct {
		name       string
		words      []string
		normalized string
	}{
		{"delete_all", []string{"delete", "all"}, "delete_all"},
		{"DELETE_all", []string{"delete", "all"}, "delete_all"},
		{"deleteAll", []string{"delete", "all"}, "deleteall"},
		{"DeleteAll", []string{"delete", "all"}, "deleteall"},
		{"removeUser", []string{"remove", "user"}, "removeuser"},
		{"repoDelete", []string{"repo", "delete"}, "repodelete"},
		{"repo-delete", []string{"repo", "delete"}, "repo-delete"},
		{"repo.delete", []string{"repo", "delete"}, "repo.delete"},
		{"repo/delete", []string{"repo", "delete"}, "repo/delete"},
		{"repo:delete", []string{"repo", "delete"}, "repo:delete"},
		{"repo delete", []string{"repo", "delete"}, "repo delete"},
		{"repo\u3000delete", []string{"repo", "delete"}, "repo delete"}, // ideographic space: NFKC space
		{"HTTPDelete", []string{"http", "delete"}, "httpdelete"},
		{"DELETEAll", []string{"delete", "all"}, "deleteall"},
		{"deleteALL", []string{"delete", "all"}, "deleteall"},
		{"getHTTPResponseCode", []string{"get", "http", "response", "code"}, "gethttpresponsecode"},
		{"v2delete", []string{"v", "2", "delete"}, "v2delete"},
		{"rm-rf", []string{"rm", "rf"}, "rm-rf"},
		{"send_payment", []string{"send", "payment"}, "send_payment"},
		{"sendPayment", []string{"send", "payment"}, "sendpayment"},
		{"deleted_items_count", []string{"deleted", "items", "count"}, "deleted_items_count"},
		{"ＤＥＬＥＴＥ_all", []string{"delete", "all"}, "delete_all"},               // fullwidth letters
		{"ＤＥＬＥＴＥ＿ａｌｌ", []string{"delete", "all"}, "delete_all"},               // fullwidth low line too
		{"ｄelete", []string{"delete"}, "delete"},                              // one fullwidth letter
		{"𝐝𝐞𝐥𝐞𝐭𝐞_all", []string{"delete", "all"}, "delete_all"},               // mathematical bold
		{"STRAẞE_löschen", []string{"strasse", "löschen"}, "strasse_löschen"}, // capital sharp s folds to ss
		{"ǅelete", []string{"dželete"}, "dželete"},                            // title-case digraph: NFKC Dž
		{"get_wéather 🌤", []string{"get", "wéather"}, "get_wéather 🌤"},
		{"e\u0301tape", []string{"étape"}, "étape"}, // combining accent joins its letter (and composes)
		{"删除File", []string{"删除", "file"}, "删除file"},
		{"", nil, ""},
		{"__", nil, "__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.words, NameWords(tt.name)); diff != "" {
				t.Errorf("NameWords(%q) (-want +got):\n%s", tt.name, diff)
			}
			if got := NormalizeName(tt.name); got != tt.normalized {
				t.Errorf("NormalizeName(%q) = %q, want %q", tt.name, got, tt.normalized)
			}
		})
	}
}

func TestSuspiciousName(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"delete_all", ""},
		{"DeleteAll", ""},
		{"get_wéather 🌤", ""},
		{"ＤＥＬＥＴＥ_all", ""}, // fullwidth Latin is Latin
		{"削除する_ファイル", ""},  // Japanese: Han + Hiragana + Katakana
		{"user_삭제", ""},    // Latin + Hangul
		{"удалить", ""},    // Cyrillic alone
		{"delete\x00all", "control character U+0000"},
		{"delete\nall", "control character U+000A"},
		{"delete\x7f", "control character U+007F"},
		{"delete\u0085", "control character U+0085"},
		{"delete\u2028all", "control character U+2028"},
		{"del\u200bete", "zero-width character U+200B"},
		{"del\u200cete", "zero-width character U+200C"},
		{"del\u200dete", "zero-width character U+200D"},
		{"del\u2060ete", "zero-width character U+2060"},
		{"\ufeffdelete", "zero-width character U+FEFF"},
		{"delete\u202e", "bidi control U+202E"},
		{"delete\u202a", "bidi control U+202A"},
		{"delete\u2066x", "bidi control U+2066"},
		{"delete\u2069x", "bidi control U+2069"},
		{"delete\u200e", "bidi control U+200E"},
		{"delete\u200f", "bidi control U+200F"},
		{"del\u00adete", "invisible character U+00AD"},
		{"del\u034fete", "invisible character U+034F"},
		{"delete\U000E0041", "invisible character U+E0041"}, // tag character
		{"delete\ufe0f", "variation selector U+FE0F"},
		{"delete\U000E0100", "variation selector U+E0100"},
		{"delete\u3164all", "invisible character U+3164"}, // Hangul filler
		{"delete\ue000", "private-use character U+E000"},
		{"delete\ufffe", "noncharacter U+FFFE"},
		{"d\u0435lete", "mixed scripts Latin+Cyrillic"}, // Cyrillic е
		{"\u0440m_rf", "mixed scripts Cyrillic+Latin"},  // Cyrillic р
		{"dεlete", "mixed scripts Latin+Greek"},
		{"delete\xff", "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SuspiciousName(tt.name); got != tt.want {
				t.Errorf("SuspiciousName(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestNameFactsOfURIs(t *testing.T) {
	tests := []struct {
		uri        string
		words      []string
		suspicious string
	}{
		{"file:///repos/acme/delete", []string{"file", "repos", "acme", "delete"}, ""},
		{"db://prod.example.com/tables/users", []string{"db", "prod", "example", "com", "tables", "users"}, ""},
		// A server may decode percent-encoding: the decoded words count too.
		{"file:///x/%64elete", []string{"file", "x", "64", "elete", "file", "x", "delete"}, ""},
		{"file:///x/a%00b", []string{"file", "x", "a", "00", "b", "file", "x", "a", "b"}, "control character U+0000 (percent-encoded)"},
		{"file:///x/a%E2%80%8Bb", []string{"file", "x", "a", "e", "2", "80", "8", "bb", "file", "x", "a", "b"}, "zero-width character U+200B (percent-encoded)"},
		{"file:///x/%zz", []string{"file", "x", "zz"}, ""}, // not valid percent-encoding: left as is
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			f := Facts(tt.uri, true)
			if diff := cmp.Diff(tt.words, f.Words); diff != "" {
				t.Errorf("words (-want +got):\n%s", diff)
			}
			if f.Suspicious != tt.suspicious {
				t.Errorf("suspicious = %q, want %q", f.Suspicious, tt.suspicious)
			}
		})
	}
	// A tool name is never percent-decoded: servers look tools up as sent.
	if f := Facts("%64elete", false); slices.Contains(f.Words, "delete") {
		t.Errorf("tool name was percent-decoded: %q", f.Words)
	}
}

func TestItemName(t *testing.T) {
	tests := []struct {
		m    MessageInput
		name string
		uri  bool
	}{
		{MessageInput{Method: "tools/call", Tool: "t", Prompt: "p", URI: "u"}, "t", false},
		{MessageInput{Method: "prompts/get", Tool: "t", Prompt: "p", URI: "u"}, "p", false},
		{MessageInput{Method: "resources/read", Tool: "t", Prompt: "p", URI: "u"}, "u", true},
		{MessageInput{Method: "resources/subscribe", URI: "u"}, "u", true},
		{MessageInput{Method: "completion/complete", Prompt: "p"}, "p", false},
		{MessageInput{Method: "completion/complete", URI: "u"}, "u", true},
		{MessageInput{Method: "ping"}, "", false},
	}
	for _, tt := range tests {
		name, uri := tt.m.ItemName()
		if name != tt.name || uri != tt.uri {
			t.Errorf("%+v: ItemName() = %q, %v; want %q, %v", tt.m, name, uri, tt.name, tt.uri)
		}
	}
}

// FuzzNormalizeName checks the normaliser's invariants on any string:
// normalising is idempotent and yields valid UTF-8; words are non-empty,
// normalised, free of separators, and found in the normalised name.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{
		"delete_all", "DELETE_all", "deleteAll", "HTTPDelete", "repo.delete", "repo:delete",
		"ＤＥＬＥＴＥ_all", "ｄelete", "𝐝𝐞𝐥𝐞𝐭𝐞", "STRAẞE", "Ǆelete", "e\u0301tape", "删除File",
		"d\u0435lete", "del\u200bete", "delete\u202e", "\u0345\u0399", "ﬃ", "İstanbul", "ǰ̌",
		"file:///x/%64elete", "delete\xff", "\u1e9e\u0301", "Σσς", "x\u0300\u0301Y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeName(s)
		if utf8.ValidString(s) && !utf8.ValidString(n) {
			t.Fatalf("NormalizeName(%q) = %q: invalid UTF-8", s, n)
		}
		if again := NormalizeName(n); again != n {
			t.Fatalf("NormalizeName not idempotent: %q -> %q -> %q", s, n, again)
		}
		for _, w := range NameWords(s) {
			if w == "" {
				t.Fatalf("NameWords(%q) has an empty word", s)
			}
			if NormalizeName(w) != w {
				t.Fatalf("NameWords(%q): word %q is not normalised", s, w)
			}
			if strings.IndexFunc(w, func(r rune) bool {
				return r < utf8.RuneSelf && !unicode.IsLetter(r) && !unicode.IsDigit(r)
			}) >= 0 {
				t.Fatalf("NameWords(%q): word %q holds an ASCII separator", s, w)
			}
		}
		_ = SuspiciousName(s)
		_ = Facts(s, true)
	})
}
