# cairn — see README.md. Two commands do all set-up on a fresh Debian machine:
#   make run    build, bring up a database if none is configured, migrate, serve
#   make test   a throwaway PostgreSQL with pgvector, go vet, the linter, every test with -race, the fuzz targets
GO      ?= go
BIN     ?= bin/cairn
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# make run serves Streamable HTTP (and SSE) on loopback so a person can see it answer;
# MCP clients run `cairn serve` (stdio) themselves. Override: make run ARGS="--transport stdio".
ARGS    ?= --transport http

# Fuzz targets make test runs, each for FUZZTIME (go test -fuzz takes one target at a time).
FUZZ     ?= ./internal/sqlguard:FuzzStatementCheck ./internal/sqlguard:FuzzStatementText
FUZZTIME ?= 10s

.PHONY: help build run test lint fuzz bench bench-peers vet fmt pgvector clean

# The linter, pinned; `go run` builds it once into Go's cache (a few minutes on a new machine).
GOLANGCI ?= github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

help: ## list the targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / { printf "  make %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## build bin/cairn
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cairn

run: build ## build, bring up a database if none is configured, migrate, serve HTTP on 127.0.0.1:8080
	@if [ -z "$$DATABASE_URL$$PGHOST$$PGDATABASE$$PGSERVICE$$PGUSER$$PGPORT" ]; then \
		scripts/ensure-pgvector.sh || echo "make run: pgvector could not be installed; the vector tools will say so" >&2; \
	fi
	./$(BIN) serve $(ARGS)

test: pgvector ## a throwaway PostgreSQL with pgvector, go vet, the linter, every test with -race, the fuzz targets
	$(GO) vet ./...
	$(MAKE) --no-print-directory lint
	scripts/with-postgres.sh $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# The statement check must survive any input: a crash in the parser takes the server down.
# Minimizing each new input is bounded: a wide statement parses in tens of ms, and unbounded
# minimization kept the fuzzer busy past FUZZTIME, which then failed the run.
fuzz: ## fuzz the SQL statement check (FUZZTIME each)
	@for t in $(FUZZ); do \
		echo "fuzz $${t#*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s "$${t%%:*}" || exit 1; \
	done

# make bench runs every benchmark, the peers leg (bench-peers) last; PEERS=0 leaves it out.
PEERS     ?= 1
PEERSARGS ?=
bench: pgvector ## every benchmark (docs/BENCHMARKS.md); BENCHARGS for one leg, PEERS=0 without the peers
	scripts/with-postgres.sh $(GO) run ./bench $(BENCHARGS)
	@if [ "$(PEERS)" != 0 ]; then $(MAKE) --no-print-directory bench-peers; fi

# cairn beside the PostgreSQL MCP servers people use instead (docs/BENCHMARKS.md, issue 13), all
# driven by the official TypeScript SDK client over stdio and Streamable HTTP. Its own cluster:
# TCP on 127.0.0.1 (as clients connect the peers) and pg_stat_statements to count statements.
# The npm packages go to a cache outside the repository (${XDG_CACHE_HOME:-~/.cache}/cairn/bench-peers).
bench-peers: pgvector ## cairn beside the other PostgreSQL MCP servers, driven by the TypeScript SDK client
	CAIRN_PG_TCP=1 CAIRN_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements" \
		scripts/with-postgres.sh $(GO) run ./bench -peers-only $(PEERSARGS)

pgvector: ## install pgvector for the machine's PostgreSQL if it is missing
	scripts/ensure-pgvector.sh

# .golangci.yml: the standard linters, and import rules that keep the layering (docs/architecture.md).
lint: ## golangci-lint (pinned), including the import rules of the layering
	$(GO) run $(GOLANGCI) run ./...

vet: ## go vet
	$(GO) vet ./...

fmt: ## gofmt every file
	gofmt -l -w .

clean: ## remove bin/
	rm -rf bin
