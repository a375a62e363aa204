# airlock — make targets. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/airlock
NODE_DIR := test/node
# Go test timeout for the whole run; keep `make test` well under 20 minutes on 2 cores.
TEST_TIMEOUT ?= 15m

.PHONY: all build test test-deps test-secretscan test-deploy check-envoy-gateway lint pgo bench bench-go bench-authz bench-xds bench-audit demo demo-deps clean fuzz quickstart-mcp standin

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/airlock

# What the tests need: the MCP / OAuth peers from npm (installed from the
# lock file). System packages are installed by scripts/test-deps.sh.
test-deps:
	@bash scripts/test-deps.sh

test: test-deps lint
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) test-secretscan
	$(MAKE) test-deploy

# Masking measured against gitleaks (recall per rule, false positives; see
# docs/masking.md). A module of its own, so the airlock binary never
# carries gitleaks: `./...` above does not reach it.
test-secretscan:
	cd test/secretscan && $(GO) vet ./... && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# deploy/ checked by each platform's own code (Helm SDK, Kubernetes types,
# istio.io/api, Envoy Gateway and Gateway API types, compose-go, BuildKit's
# Dockerfile parser) and airlock's validate and deep validation. A module
# of its own (deploy/check), so none of that enters airlock's binary.
test-deploy:
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# Optional, heavy: Envoy Gateway's own translator (egctl x translate) on
# deploy/envoy-gateway, its xDS compared with a golden. Building egctl takes
# ~14 min and ~320 MiB here; it is kept in .cache/tools (git-ignored) and
# built once per version. EGCTL_UPDATE=1 rewrites the golden.
EGCTL_VERSION ?= v1.9.1
EGCTL := .cache/tools/egctl-$(EGCTL_VERSION)
$(EGCTL):
	mkdir -p .cache/tools/bin
	GOBIN=$(abspath .cache/tools/bin) $(GO) install github.com/envoyproxy/gateway/cmd/egctl@$(EGCTL_VERSION)
	mv .cache/tools/bin/egctl $@
check-envoy-gateway: $(EGCTL)
	cd deploy/check && EGCTL=$(abspath $(EGCTL)) $(GO) test -count=1 -tags egctl -run TestEgctlTranslate ./... $(if $(EGCTL_UPDATE),-update)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(NODE_DIR)/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# The main module and the nested ones (which replace it with ../..)
	@# must be tidy: a dependency added to airlock is missing from their
	@# go.sum otherwise, and only their own test targets would find out.
	@for m in . test/secretscan deploy/check; do \
	  (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "go.mod/go.sum of $$m are not tidy: run (cd $$m && go mod tidy)"; exit 1; }; \
	done

# Short fuzzing of every parser: every Fuzz target in the module, found by
# `go test -list`, so a new one is never left out (the seed corpora also
# run in `make test`). FUZZTIME=30s make fuzz for longer runs.
FUZZTIME ?= 200000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

# What the demo needs: the npm peers only (no ClickHouse, no Chromium, no root).
demo-deps:
	@bash scripts/test-deps.sh --node

# Build airlock, start an OIDC issuer, two MCP servers, `airlock serve` and
# the data path (Envoy if on PATH, else the local stand-in), run a scripted
# agent session, check and print each step, replay it from the recording.
# Ctrl-C stops everything and exits 0; the directory with the config and the
# recording is kept (DEMO_ARGS=--clean deletes it). DEMO_ARGS=--once exits
# after the script (what CI and the test run). The demo program is built,
# not `go run`, so Ctrl-C reaches it directly and its exit status is make's.
DEMO_ARGS ?=
demo: build demo-deps
	$(GO) build -o bin/airlock-demo ./test/demo
	bin/airlock-demo --airlock $(BIN) $(DEMO_ARGS)

# The README's quick start by hand, one terminal each: the reference MCP
# server on :3001, an OIDC issuer minting Okta-shaped tokens on :9400
# (token in /tmp/token.txt), and, without Envoy, airlock's local stand-in
# for it running ENVOY_CONFIG (what `airlock envoy bootstrap` printed).
ENVOY_CONFIG ?= /tmp/envoy.yaml
quickstart-mcp: demo-deps
	cd $(NODE_DIR) && PORT=3001 node_modules/.bin/mcp-server-everything streamableHttp
standin:
	$(GO) run ./test/cmd/standin -c $(ENVOY_CONFIG)

# Benchmarks: Go micro-benchmarks of the hot paths, then the load drivers.
# Figures and how to read them: docs/benchmarks.md.
bench: bench-go bench-authz bench-xds bench-audit

# The benchmarks that measure a goal of issue 19 say so in a line of
# their own (b.Logf ... "goal ..."); those lines are printed again at the
# end, after everything else.
BENCH_GO_OUT ?= bin/bench-go.txt
bench-go:
	@mkdir -p $(dir $(BENCH_GO_OUT))
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./internal/mcp ./internal/identity ./internal/policy/... ./internal/mask ./extauthz ./extproc | tee $(BENCH_GO_OUT)
	@echo "== goals (issue 19) from the benchmarks above:"; grep -h 'goal' $(BENCH_GO_OUT) | sed 's/^ *[a-z_]*\.go:[0-9]*: /  /'

# xDS: time and cost from a grant change to the client holding the routes,
# with 1,000 and 10,000 live grants.
bench-xds:
	$(GO) test -run '^$$' -bench 'GrantChange/delta|UpsertGrant|GrantScope' -benchmem -benchtime 2000x ./xds ./envoy
	$(GO) test -run '^$$' -bench 'GrantChange/sotw' -benchtime 200x ./xds

# Audit ingestion into a local ClickHouse (started by the driver).
bench-audit:
	$(GO) run ./test/bench/auditload

# ext_authz load benchmark: airlock (issue 19's full configuration: audit
# into a local ClickHouse the driver starts, decision log, masking profile,
# 10,000 live grants) against a no-op Check server, each in its own process
# on loopback; then ext_proc exchanges (JSON, SSE) against airlock and a
# no-op processor, and airlock's memory with 1,000 open MCP streams. Each
# goal prints beside its figure. The opa-envoy-plugin peer runs only when
# OPA_ENVOY_PLUGIN names a binary built outside this repository.
# More flags: make bench-authz BENCH_AUTHZ_FLAGS='--rounds 5'
# (--phases authz,proc,mem; --clickhouse off without clickhouse-server)
BENCH_AUTHZ_FLAGS ?=
bench-authz: build
	$(GO) build -o bin/authzload ./test/bench/authzload
	@if [ -z "$$OPA_ENVOY_PLUGIN" ]; then echo "bench-authz: OPA_ENVOY_PLUGIN is not set: the opa-envoy-plugin peer is skipped (see docs/benchmarks.md)"; fi
	./bin/authzload run --airlock-bin $(BIN) $(BENCH_AUTHZ_FLAGS)

# Profile-guided optimisation: cmd/airlock/default.pgo (used by every
# `go build ./cmd/airlock`) is a CPU profile of the request paths — the
# ext_authz Check in process and over gRPC (every call new) and an ext_proc
# exchange — merged into one. Refresh it after changing those paths; see
# docs/benchmarks.md for what it gains.
PGO_TMP ?= /tmp/airlock-pgo
pgo:
	rm -rf $(PGO_TMP) && mkdir -p $(PGO_TMP)
	$(GO) test -run '^$$' -bench 'BenchmarkAirlockCheck$$/fresh|BenchmarkAirlockCheckGRPC' -benchtime 5s \
		-cpuprofile $(PGO_TMP)/authz.pprof -o $(PGO_TMP)/authz.test ./test/bench/authzload
	$(GO) test -run '^$$' -bench 'Exchange/airlock' -benchtime 10000x \
		-cpuprofile $(PGO_TMP)/proc.pprof -o $(PGO_TMP)/proc.test ./extproc
	$(GO) tool pprof -proto $(PGO_TMP)/authz.pprof $(PGO_TMP)/proc.pprof > cmd/airlock/default.pgo
	rm -rf $(PGO_TMP)

clean:
	rm -rf bin
