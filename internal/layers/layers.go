// Package layers is the dependency rule of the code base, as data, and the
// test that holds it (see docs/architecture.md).
//
// Every airlock package has a rank. A package may import airlock packages
// of a lower rank only: configuration and the wire contract at the bottom,
// vocabularies and engines above them, the services' cores and adapters
// above those, start-up wiring and the command line on top. Light packages
// must never reach the heavy engines (OPA, clickhouse-go, go-control-plane's
// server side), so that the Envoy renderer, ext_proc and the vocabularies
// stay quick to build and small to link.
package layers

// Module is the module path every rank below is relative to.
const Module = "github.com/airlock-mcp/airlock"

// Rank is each package's place, relative to Module. A package missing
// from the table fails the test: placing it is a design decision.
var Rank = map[string]int{
	// 0: plain data and contracts; import no airlock package.
	"internal/config":   0,
	"internal/wire":     0,
	"internal/jsontext": 0,
	"internal/layers":   0,
	"internal/syncbuf":  0, // test support: a log buffer safe across goroutines
	"internal/grpcwire": 0, // the gRPC codec of Envoy's filters' servers
	"internal/cputime":  0, // benchmark support: process and thread CPU time

	// 1: parsers and vocabularies of the outside world.
	"internal/mcp":      1,
	"internal/mask":     1,
	"internal/identity": 1,
	"internal/mtls":     1,
	// the OpenTelemetry API the services trace with (no SDK, no exporter).
	"internal/tracing": 1,
	// a local OIDC provider for `airlock dev` (not for production); only
	// the command line uses it.
	"internal/devissuer": 1,

	// 2: the policy's vocabulary (its input names a verified principal).
	"internal/policy": 2,

	// 3: engines and stores behind those vocabularies.
	"internal/policy/rego": 3,
	"internal/grants":      3,
	"internal/audit":       3,
	// the OPA-shaped decision log: policy input and result, masked.
	"internal/decisionlog": 3,

	// 4: what only a running gateway needs of them.
	"internal/notify": 4,
	// the OpenTelemetry SDK and OTLP exporters, from configuration.
	"internal/telemetry":        4,
	"internal/audit/clickhouse": 4,
	// the grant store replicas share (PostgreSQL), and the conformance
	// suite every grant store passes.
	"internal/grants/pgstore":   4,
	"internal/grants/storetest": 4,

	// 5: what Envoy and people talk to: the ext_authz and ext_proc cores
	// and their gRPC adapters, the Envoy renderer, the HTTP surfaces.
	"envoy":              5,
	"extauthz":           5,
	"extproc":            5,
	"internal/approvals": 5,
	"internal/meta":      5,
	// 6: the ADS server serves what envoy renders; the Slack app decides
	// through the approvals package's rules.
	"xds":               6,
	"internal/slackapp": 6,

	// 7: start-up wiring; 8: the command line; 9: main.
	"internal/serve": 7,
	"internal/cli":   8,
	"cmd/airlock":    9,

	// Test support is ranked like what it supports.
	"internal/mtls/mtlstest":           2,
	"internal/approvals/approvalstest": 6,
	"internal/grants/grantstest":       4,
	"internal/grants/pgtest":           0, // a throw-away PostgreSQL; imports no airlock package
}

// Light packages must not reach these module path prefixes, even
// indirectly.
var Heavy = []string{
	"github.com/open-policy-agent/opa",
	"github.com/ClickHouse/clickhouse-go",
	"github.com/ClickHouse/ch-go",
	"github.com/jackc/pgx",
}

// Light are the packages (relative to Module) that must never reach a
// Heavy module.
var Light = []string{
	"envoy",
	"extproc",
	"internal/config",
	"internal/wire",
	"internal/policy",
	"internal/mask",
	"internal/mcp",
}
