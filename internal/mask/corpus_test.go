package mask

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// A corpus of realistic MCP tool results for tests and benchmarks: what
// GitHub, filesystem, log and config tools send back. Built from a fixed
// seed, so every run sees the same bytes.

var words = strings.Fields(`the a to of and in is it for on that with as this be are was by
at from or an not have has but can will if when which all we there more one new
error request response server client token cache config user session build test
release deploy timeout retry connection handler service value field index query
update delete create list read write file path line function return struct
package import module version commit branch merge review issue label milestone`)

func sentence(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	b.WriteByte('.')
	return b.String()
}

func paragraph(r *rand.Rand) string {
	var ss []string
	for range 2 + r.IntN(4) {
		ss = append(ss, sentence(r, 6+r.IntN(12)))
	}
	return strings.Join(ss, " ")
}

func uuid(r *rand.Rand) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 36)
	for i := range b {
		switch i {
		case 8, 13, 18, 23:
			b[i] = '-'
		default:
			b[i] = hex[r.IntN(16)]
		}
	}
	return string(b)
}

func sha(r *rand.Rand) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 40)
	for i := range b {
		b[i] = hex[r.IntN(16)]
	}
	return string(b)
}

// toolResult wraps content texts (and structured content) in a JSON-RPC
// response, as an MCP server writes it.
func toolResult(id int, texts []string, structured any) []byte {
	type content struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	res := map[string]any{"content": []content{}}
	var cs []content
	for _, t := range texts {
		cs = append(cs, content{"text", t})
	}
	res["content"] = cs
	if structured != nil {
		res["structuredContent"] = structured
	}
	res["isError"] = false
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": res})
	if err != nil {
		panic(err)
	}
	return b
}

func issueList(r *rand.Rand, n int, secret string) []byte {
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	var issues []map[string]any
	for i := range n {
		body := paragraph(r) + "\n\n```\n" + sentence(r, 8) + "\n```\n\n" + paragraph(r)
		if secret != "" && i == n/2 {
			body += "\n\nrepro: export TOKEN=" + secret
		}
		issues = append(issues, map[string]any{
			"number":     1000 + r.IntN(9000),
			"title":      sentence(r, 5+r.IntN(6)),
			"state":      []string{"open", "closed"}[r.IntN(2)],
			"user":       map[string]any{"login": "dev" + fmt.Sprint(r.IntN(500)), "id": r.IntN(1 << 24), "type": "User"},
			"labels":     []map[string]any{{"name": "bug", "color": "d73a4a"}, {"name": "triage", "color": "ededed"}},
			"comments":   r.IntN(30),
			"created_at": t0.Add(time.Duration(r.IntN(1<<20)) * time.Minute).Format(time.RFC3339),
			"html_url":   fmt.Sprintf("https://github.com/acme/widgets/issues/%d", 1000+i),
			"node_id":    "I_kwDOA" + sha(r)[:14],
			"body":       body,
		})
	}
	text, _ := json.Marshal(issues)
	return toolResult(r.IntN(100), []string{string(text)}, map[string]any{"issues": issues, "total_count": n})
}

func fileContents(r *rand.Rand, secret string) []byte {
	var b strings.Builder
	b.WriteString("package server\n\nimport (\n\t\"context\"\n\t\"net/http\"\n\t\"time\"\n)\n\n")
	for i := range 12 {
		fmt.Fprintf(&b, "// handle%d %s\nfunc handle%d(ctx context.Context, w http.ResponseWriter, r *http.Request) error {\n", i, sentence(r, 8), i)
		fmt.Fprintf(&b, "\tctx, cancel := context.WithTimeout(ctx, %d*time.Second)\n\tdefer cancel()\n", 1+r.IntN(30))
		fmt.Fprintf(&b, "\tif err := s.store.Get(ctx, %q); err != nil {\n\t\treturn fmt.Errorf(\"get %%s: %%w\", %q, err)\n\t}\n", uuid(r), words[r.IntN(len(words))])
		if secret != "" && i == 6 {
			fmt.Fprintf(&b, "\tconst apiKey = %q // TODO move to vault\n", secret)
		}
		b.WriteString("\treturn nil\n}\n\n")
	}
	return toolResult(r.IntN(100), []string{b.String()}, nil)
}

func logLines(r *rand.Rand, n int, secret string) []byte {
	var b strings.Builder
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	levels := []string{"INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"}
	for i := range n {
		ts := t0.Add(time.Duration(i*137) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		fmt.Fprintf(&b, "%s %s request_id=%s method=GET path=/api/v1/%s/%d status=%d duration_ms=%d remote=10.%d.%d.%d msg=%q\n",
			ts, levels[r.IntN(len(levels))], uuid(r), words[r.IntN(len(words))], r.IntN(100000), []int{200, 200, 201, 404, 500}[r.IntN(5)],
			r.IntN(2000), r.IntN(256), r.IntN(256), r.IntN(256), sentence(r, 6))
		if secret != "" && i == n/3 {
			fmt.Fprintf(&b, "%s DEBUG outgoing request headers: Authorization: Bearer %s\n", ts, secret)
		}
	}
	return toolResult(r.IntN(100), []string{b.String()}, nil)
}

func configDump() []byte {
	env := "# deploy environment\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n" +
		"GITHUB_TOKEN=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789\nDATABASE_URL=postgres://billing:hunter2-not-a-real-password@db.internal:5432/billing\n" +
		"STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc\nSLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx\nLOG_LEVEL=info\nPORT=8080\n"
	cfg := `{"service":"billing","database":{"host":"db.internal","port":5432,"user":"billing","password":"hunter2-not-a-real-password"},` +
		`"smtp":{"host":"smtp.internal","password":"correct-horse-battery-staple"},"replicas":3,"features":{"new_checkout":true,"beta":false}}`
	return toolResult(7, []string{env, cfg}, map[string]any{"service": "billing", "credentials": map[string]any{"api_key": "k-1234567890", "client_secret": "s3cr3t-v4lu3"}})
}

func markdownDoc(r *rand.Rand) []byte {
	var b strings.Builder
	b.WriteString("# Deployment guide\n\n")
	for i := range 8 {
		fmt.Fprintf(&b, "## Step %d: %s\n\n%s\n\n- %s\n- %s\n\n", i+1, sentence(r, 4), paragraph(r), sentence(r, 7), sentence(r, 9))
	}
	return toolResult(r.IntN(100), []string{b.String()}, nil)
}

// The secrets that go into the secret corpus.
const (
	corpusGitHubToken = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	corpusOpenAIKey   = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	corpusJWT         = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

// corpus returns the benchmark documents: realistic tool results without
// secrets (clean) or with a few secrets each (secrets).
func corpus(secrets bool) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s string) string {
		if secrets {
			return s
		}
		return ""
	}
	docs := [][]byte{
		issueList(r, 8, pick(corpusGitHubToken)),
		issueList(r, 3, pick(corpusJWT)),
		fileContents(r, pick(corpusOpenAIKey)),
		logLines(r, 40, pick(corpusJWT)),
		markdownDoc(r),
	}
	if secrets {
		docs = append(docs, configDump())
	}
	return docs
}
