package main
import (
 _ "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
 _ "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
 _ "github.com/envoyproxy/go-control-plane/pkg/server/v3"
 _ "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
 _ "github.com/coreos/go-oidc/v3/oidc"
 _ "github.com/open-policy-agent/opa/v1/rego"
 _ "github.com/open-policy-agent/opa/v1/tester"
 _ "github.com/ClickHouse/clickhouse-go/v2"
 _ "github.com/modelcontextprotocol/go-sdk/mcp"
 _ "github.com/go-jose/go-jose/v4"
 _ "google.golang.org/grpc"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/google/go-cmp/cmp"
 _ "github.com/goccy/go-yaml"
)
func main(){}
