# airlock — make targets. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/airlock
NODE_DIR := test/node
# Go test timeout for the whole run; keep `make test` well under 20 minutes on 2 cores.
TEST_TIMEOUT ?= 15m

.PHONY: all build test test-deps lint bench demo clean fuzz

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/airlock

# What the tests need: the MCP / OAuth peers from npm (installed from the
# lock file). System packages are installed by scripts/test-deps.sh.
test-deps:
	@bash scripts/test-deps.sh

test: test-deps lint
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(NODE_DIR)/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Short fuzzing of every parser (the seed corpora also run in `make test`).
fuzz:
	$(GO) test ./internal/mcp -run '^$$' -fuzz FuzzParseHTTP -fuzztime 200000x
	$(GO) test ./internal/config -run '^$$' -fuzz FuzzParse -fuzztime 200000x

# Build airlock, start an OIDC issuer, two MCP servers, `airlock serve` and
# the data path (Envoy if on PATH, else the local stand-in), run a scripted
# agent session and print what happened. Ctrl-C stops everything.
demo: build test-deps
	$(GO) run ./test/demo --airlock $(BIN)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/... ./extauthz/...

clean:
	rm -rf bin
