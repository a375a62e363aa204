// Package check holds the tests that check everything under deploy/ with
// each platform's own code: the Helm chart rendered and linted by the Helm
// SDK and every object strictly decoded into its Kubernetes type; Istio
// resources strictly decoded into istio.io/api types; Envoy Gateway and
// Gateway API resources into their Go types; the compose file loaded by
// compose-go; and every Envoy configuration deep-validated as airlock's
// own generated ones are (envoy.ValidateDeep).
//
// It is a module of its own (deploy/check/go.mod) so that Helm, Kubernetes,
// Istio, Envoy Gateway and compose-go never enter airlock's binary or its
// main module's dependency graph: `make test-deploy` runs it.
//
// The package also generates the chart's values.schema.json: the chart's
// own keys come from schema/chart.json, and `config` (airlock.yaml) is
// reflected from internal/config's types (ConfigSchema), each field described by its
// doc comment (FieldDocs).
// `go test -run TestValuesSchema -update` rewrites it.
package check
