package extproc

import (
	"testing"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Masked values are counted by target and detector; the target label
// takes only configured target names, whatever the metadata says.
func TestMaskedCountedByTargetAndDetector(t *testing.T) {
	tests := []struct {
		name       string
		configured []string
		target     string // in ext_authz's metadata
		wantLabel  string
	}{
		{"configured target", []string{"github", "jira"}, "github", "github"},
		{"target not configured", []string{"jira"}, "github", "other"},
		{"no targets given", nil, "github", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := startWith(t, func(o *Options) { o.Registry, o.Targets = reg, tt.configured })
			m := map[string]any{}
			for k, v := range meta {
				m[k] = v
			}
			m["target"] = tt.target
			x := e.open(t, procmodev3.ProcessingMode_STREAMED)
			x.requestPhases(m, toolCall)
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json")}})
			x.recv()
			body := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"key ` + awsKey + ` and ` + awsKey + `"}]}}`
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
			x.recv()
			_ = x.stream.CloseSend()
			if got := testutil.ToFloat64(e.p.metrics.masked.WithLabelValues(tt.wantLabel, "aws_access_key")); got != 2 {
				t.Errorf("airlock_proc_masked_total{target=%q,detector=aws_access_key} = %v, want 2", tt.wantLabel, got)
			}
			if n := testutil.CollectAndCount(e.p.metrics.masked); n != 1 {
				t.Errorf("%d masked series, want 1", n)
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
		})
	}
}
