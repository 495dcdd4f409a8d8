# The entry points. Each target sets up what it needs: the virtualenv at .venv
# (pinned by pyproject.toml + constraints.txt) and the generated gRPC stubs.
SHELL := /bin/bash
# The interpreter, 3.11 (.venv) by default; PY=3.12 or PY=3.13 runs any target on that one
# in its own virtualenv (.venv-3.12 …): `make test PY=3.13`. .ci/find-python finds it on
# PATH or among pyenv's versions. PYTHON=/path/to/python VENV=dir set both by hand.
DEFAULT_PY := 3.11
PY ?= $(DEFAULT_PY)
PYTHON ?= $(shell bash .ci/find-python $(PY))
VENV ?= $(if $(filter $(DEFAULT_PY),$(PY)),.venv,.venv-$(PY))
BIN := $(VENV)/bin
BUF ?= $(BIN)/buf
PROTO_DIR := protos
PROTO_SRC := $(PROTO_DIR)/prospectsync/v1/prospect_sync.proto
STUB_STEM := $(PROTO_DIR)/prospectsync/v1/prospect_sync_pb2
STUBS := $(STUB_STEM).py $(STUB_STEM).pyi $(STUB_STEM)_grpc.py $(STUB_STEM)_grpc.pyi
CONFIG ?= examples/demo.toml

.PHONY: run test protos lint breaking venv clean bench-calls

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || test -n "$(PYTHON)" || \
		{ echo "no Python $(PY) on PATH or in pyenv: install it, or set PYTHON=/path/to/python"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Stubs are generated, never committed: one command makes them from the .proto.
# The .pyi files come from mypy-protobuf (--mypy_out, --mypy_grpc_out), not protoc's own
# --pyi_out: those pass mypy --strict as generated, type enums as Outcome.ValueType rather
# than int, make constructors keyword-only and HasField take only real field names, and
# type the servicer base class and add_ProspectSyncServicer_to_server (--pyi_out types no
# _grpc module at all). One grouped target (&:): a missing or stale output remakes all four.
protos: $(STUBS)

$(STUBS) &: $(PROTO_SRC) $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -I $(PROTO_DIR) \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		--python_out=$(PROTO_DIR) --grpc_python_out=$(PROTO_DIR) \
		--mypy_out=quiet:$(PROTO_DIR) --mypy_grpc_out=quiet:$(PROTO_DIR) \
		$(PROTO_SRC)

# Starts the embedded fake Pardot on loopback and the service on 127.0.0.1:50051 (CONFIG's
# server.listen; its pardot_url must name FAKE_PORT), and stops both however it is
# stopped: Ctrl-C (SIGINT to the terminal's foreground group), `kill <make's pid>`
# (SIGTERM: make passes it on to this shell), `timeout N make run` (SIGTERM to make and
# its group) or a closed terminal (SIGHUP to the group); also when either one exits on
# its own (the server cannot bind, say), the other is stopped. Both run in the background
# because bash runs a trap only between commands and `wait` is a command it interrupts;
# the trap sends each a SIGTERM (the server then drains in order) and waits for both. They
# ignore SIGHUP, which only the shell acts on, so a closed terminal also drains in order.
# tests/tooling/test_make_run.py checks every one of these ways.
FAKE_PORT ?= 8750
run: protos
	@fake=; serve=; \
	stop() { trap '' INT TERM HUP; kill -TERM $$serve $$fake 2>/dev/null; wait $$serve $$fake; }; \
	trap 'stop; exit 130' INT; trap 'stop; exit 143' TERM; trap 'stop; exit 129' HUP; \
	(trap '' HUP; exec $(BIN)/prospect-sync fake-pardot --port $(FAKE_PORT) --demo) & fake=$$!; \
	(trap '' HUP; exec $(BIN)/prospect-sync serve --config $(CONFIG)) & serve=$$!; \
	wait -n $$serve $$fake; status=$$?; stop; exit $$status

# Three replicas on one shared state, as a deployment runs them: redis-server on
# 127.0.0.1:REDIS_PORT (no persistence, its files in a temporary folder removed on stop),
# the embedded fake Pardot on FAKE_PORT, and `prospect-sync serve` on each of
# CLUSTER_PORTS with CONFIG plus `state = "redis"` and a [redis] table (written to that
# folder, owner-only). Stopped as `make run` is (the same signals, the same trap; also
# when any one of them exits on its own): the replicas and the fake drain first, then
# Redis stops. tests/tooling/test_make_run_cluster.py checks it.
REDIS_PORT ?= 6390
CLUSTER_PORTS ?= 50051 50052 50053
.PHONY: run-cluster
run-cluster: protos
	@command -v redis-server >/dev/null || { [ "$${CI:-}" = true ] || [ "$$(id -u)" = 0 ]; } || \
		{ echo "make run-cluster needs redis-server: run sudo make redis-deps"; exit 2; }
	@command -v redis-server >/dev/null || $(MAKE) --no-print-directory redis-deps
	@data=$$(mktemp -d); redis=; fake=; serves=; \
	stop() { trap '' INT TERM HUP; kill -TERM $$serves $$fake 2>/dev/null; wait $$serves $$fake; \
		kill -TERM $$redis 2>/dev/null; wait $$redis; rm -rf "$$data"; }; \
	trap 'stop; exit 130' INT; trap 'stop; exit 143' TERM; trap 'stop; exit 129' HUP; \
	(umask 077; awk '{ print } /^\[server\]/ { print "state = \"redis\"" }' $(CONFIG); \
		printf '\n[redis]\nurl = "redis://127.0.0.1:%s/0"\n' $(REDIS_PORT)) > "$$data/cluster.toml"; \
	(trap '' HUP; exec redis-server --bind 127.0.0.1 --port $(REDIS_PORT) --dir "$$data" \
		--save "" --appendonly no --protected-mode yes --loglevel warning) & redis=$$!; \
	for try in $$(seq 100); do \
		(exec 3<>/dev/tcp/127.0.0.1/$(REDIS_PORT) && printf 'PING\r\n' >&3 && read -r -t 1 pong <&3 && \
			[[ $$pong == +PONG* ]]) 2>/dev/null && break; \
		kill -0 $$redis 2>/dev/null || break; sleep 0.1; \
	done; \
	(trap '' HUP; exec $(BIN)/prospect-sync fake-pardot --port $(FAKE_PORT) --demo) & fake=$$!; \
	for port in $(CLUSTER_PORTS); do \
		(trap '' HUP; exec $(BIN)/prospect-sync serve --config "$$data/cluster.toml" \
			--listen 127.0.0.1:$$port) & serves="$$serves $$!"; \
	done; \
	wait -n $$redis $$fake $$serves; status=$$?; stop; exit $$status

# The suite on one interpreter (PY=…): the stubs, then what the browser test, the Node
# client test and the stub-generation tests need (each installs on CI or as root, or says
# how), then pytest.
test: protos browser-deps-for-tests redis-deps-for-tests node-deps-for-tests stubs-deps-for-tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for tests/browser: Debian's chromium package (needs root).
.PHONY: browser-deps browser-deps-for-tests
browser-deps:
	command -v chromium >/dev/null || (apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

# What `make test` does about Chromium when it is missing: installs it on CI (CI=true)
# or as root; anyone else is told that tests/browser will skip, and how to change that.
browser-deps-for-tests:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$${CI:-}" = true ] || [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory browser-deps; \
	else echo "chromium is missing and this is not root: tests/browser will skip (run: sudo make browser-deps)"; fi

# Debian's redis-server for the shared-state tests (tests/support/redis_server.py starts
# one per test session on a free loopback port; nothing listens on 6379).
.PHONY: redis-deps redis-deps-for-tests
redis-deps:
	command -v redis-server >/dev/null || (apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server)

# As for Chromium: installed on CI or as root; anyone else is told the Redis tests skip.
redis-deps-for-tests:
	@if command -v redis-server >/dev/null; then :; \
	elif [ "$${CI:-}" = true ] || [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory redis-deps; \
	else echo "redis-server is missing and this is not root: the Redis state tests will skip (run: sudo make redis-deps)"; fi

# Style, types (mypy --strict over the four rooms), the import contract (DESIGN.md's
# one-way arrows and no cycles: [tool.importlinter] in pyproject.toml) and the proto:
# buf lint, then buf breaking (below).
lint: protos
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	cd $(PROTO_DIR) && $(abspath $(BUF)) lint
	@$(MAKE) --no-print-directory breaking

# buf breaking, FILE rules (protos/buf.yaml): a field, enum value, message, method or file
# renamed, renumbered, retyped or removed, or a file option changed, fails. "Against main"
# means against EVERY committed version of protos/ from BREAKING_SINCE to HEAD, and the
# work tree is what is checked. Why not HEAD~1: CI runs in a fresh clone of the submitted
# main, where the change under test is its newest commits, however many, and nothing marks
# where they begin; comparing with each earlier version catches a break made three commits
# back as surely as one in the last commit, and a break not yet committed (against HEAD).
# A clean tree passes: each version is a prefix of the contract that never broke.
# BREAKING_SINCE is the first commit that set the per-language file options (go_package
# …): before it no Go, Java or C# stubs could exist, and setting them is a "change" that
# FILE rules would flag. A deliberate break (prefer a new package, prospectsync.v2) means
# setting BREAKING_SINCE to the commit that makes it. Needs git; a shallow clone checks
# the versions it has.
BREAKING_SINCE ?= $(shell git log --format=%H -G'^option go_package' -- $(PROTO_SRC) 2>/dev/null | tail -n1)
breaking:
	@since="$(BREAKING_SINCE)"; \
	if [ -z "$$since" ]; then echo "buf breaking: skipped, no commit sets go_package in $(PROTO_SRC) yet"; exit 0; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; failed=0; checked=0; \
	for commit in $$(git rev-list "$$since..HEAD" -- $(PROTO_DIR)) $$since; do \
		mkdir "$$tmp/$$commit" && git archive "$$commit" $(PROTO_DIR) | tar -x -C "$$tmp/$$commit" || exit 2; \
		checked=$$((checked + 1)); \
		(cd $(PROTO_DIR) && $(abspath $(BUF)) breaking --against "$$tmp/$$commit/$(PROTO_DIR)") || \
			{ echo "buf breaking: $(PROTO_DIR)/ breaks the contract as of $$(git log -1 --format='%h %s' $$commit)"; failed=1; }; \
	done; \
	[ $$failed = 0 ] && echo "buf breaking: compatible with $$checked committed version(s) of $(PROTO_DIR)/ since $${since:0:9}"; \
	exit $$failed

# Stubs for callers in other languages, from the same .proto: `make stubs LANG=node|go|cpp`
# writes build/stubs/LANG/ (git-ignored; STUBS_DIR= elsewhere) through buf and
# buf.gen.LANG.yaml, whose plugins are all local: nothing comes from a remote registry.
#   node: ts-proto (TypeScript for @grpc/grpc-js), from npm with tests/node's lockfile
#   go:   protoc-gen-go, protoc-gen-go-grpc (Debian packages of the same names)
#   cpp:  protoc's C++ generator and grpc_cpp_plugin (protobuf-compiler, protobuf-compiler-grpc)
# Missing tools are installed on CI (CI=true) or as root; anyone else is told what to
# install. LANG counts only from the command line: the environment's LANG is the locale.
STUBS_DIR ?= build/stubs
STUBS_LANG := $(if $(filter command line,$(origin LANG)),$(LANG))
STUBS_TOOLS_go := protoc-gen-go protoc-gen-go-grpc
STUBS_TOOLS_cpp := protoc grpc_cpp_plugin
STUBS_APT_go := protoc-gen-go protoc-gen-go-grpc
STUBS_APT_cpp := protobuf-compiler protobuf-compiler-grpc
.PHONY: stubs stubs-deps-node stubs-deps-go stubs-deps-cpp stubs-deps-for-tests
stubs: $(VENV)/.installed
	@case "$(STUBS_LANG)" in node|go|cpp) ;; \
		*) echo "usage: make stubs LANG=node|go|cpp (writes $(STUBS_DIR)/LANG/)"; exit 2;; esac
	@$(MAKE) --no-print-directory stubs-deps-$(STUBS_LANG)
	unset LANG; $(abspath $(BUF)) generate --template buf.gen.$(STUBS_LANG).yaml -o $(STUBS_DIR)
	@echo "$(STUBS_LANG) stubs in $(STUBS_DIR)/$(STUBS_LANG)/"

stubs-deps-node: node-deps
stubs-deps-go stubs-deps-cpp: stubs-deps-%:
	@missing=; for tool in $(STUBS_TOOLS_$*); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$${CI:-}" = true ] || [ "$$(id -u)" = 0 ]; then \
		unset LANG; apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(STUBS_APT_$*) >/dev/null; \
	else echo "make stubs LANG=$* needs$$missing: sudo apt-get install $(STUBS_APT_$*)"; exit 1; fi

# What `make test` does about the Go and C++ plugins (tests/tooling/test_stubs.py): installs
# them on CI or as root, like Chromium; a failed install only means those tests skip.
stubs-deps-for-tests:
	@if [ "$${CI:-}" = true ] || [ "$$(id -u)" = 0 ]; then \
		for lang in go cpp; do $(MAKE) --no-print-directory stubs-deps-$$lang || \
			echo "could not install the $$lang stub plugins: tests/tooling/test_stubs.py skips $$lang"; done; \
	else echo "not root: the Go and C++ stub tests run only where their plugins are installed (README)"; fi

# The Node.js client test's packages (tests/node: @grpc/grpc-js, @grpc/proto-loader, ts-proto),
# exactly as package-lock.json pins them; again only when the lockfile changed.
NODE_DIR := tests/node
.PHONY: node-deps node-deps-for-tests
node-deps: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# CI must run the Node client test (its tools come from npm); elsewhere a machine without
# npm is told that it skips.
node-deps-for-tests:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory node-deps; \
	elif [ "$${CI:-}" = true ]; then echo "npm is missing: CI runs tests/node (install Node.js 20+)"; exit 1; \
	else echo "npm is missing: tests/e2e/test_node_client.py will skip (install Node.js 20+ and npm)"; fi

# Pardot calls per identify for each strategy, cold and warm (the README's table).
bench-calls: protos
	$(BIN)/python bench/calls_per_identify.py

# Throughput against fakepardot at 200 ms and 5 in flight (issue 6): one table, our
# overhead beside a bare grpc.aio echo server, and a 5,000-call memory burst. About two
# minutes; BENCH_ARGS="--runs 3 --json bench.json" for medians (docs/benchmarks.md).
.PHONY: bench
bench: protos redis-deps-for-tests
	$(BIN)/python -m bench.throughput $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(STUBS_DIR) $(NODE_DIR)/node_modules $(PROTO_DIR)/prospectsync/v1/*_pb2*.py $(PROTO_DIR)/prospectsync/v1/*_pb2*.pyi
