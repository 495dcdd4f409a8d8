# The entry points. Each target sets up what it needs: the virtualenv at .venv
# (pinned by pyproject.toml + constraints.txt) and the generated gRPC stubs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROTO_DIR := protos
PROTO_SRC := $(PROTO_DIR)/prospectsync/v1/prospect_sync.proto
STUB_STEM := $(PROTO_DIR)/prospectsync/v1/prospect_sync_pb2
STUBS := $(STUB_STEM).py $(STUB_STEM).pyi $(STUB_STEM)_grpc.py $(STUB_STEM)_grpc.pyi
CONFIG ?= examples/demo.toml

.PHONY: run test protos lint venv clean bench-calls

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
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

# Starts the embedded fake Pardot on loopback and the service on 127.0.0.1:50051.
FAKE_PORT ?= 8750
run: protos
	@set -m; $(BIN)/prospect-sync fake-pardot --port $(FAKE_PORT) --demo & fake=$$!; \
	trap 'kill $$fake 2>/dev/null' EXIT INT TERM; \
	$(BIN)/prospect-sync serve --config $(CONFIG)

test: protos browser-deps-for-tests
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

# Style, types (mypy --strict over the four rooms), the import contract (DESIGN.md's
# one-way arrows and no cycles: [tool.importlinter] in pyproject.toml) and the proto.
lint: protos
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	cd $(PROTO_DIR) && ../$(BIN)/buf lint

# Pardot calls per identify for each strategy, cold and warm (the README's table).
bench-calls: protos
	$(BIN)/python bench/calls_per_identify.py

# Throughput against fakepardot at 200 ms and 5 in flight (issue 6): one table, our
# overhead beside a bare grpc.aio echo server, and a 5,000-call memory burst. About two
# minutes; BENCH_ARGS="--runs 3 --json bench.json" for medians (docs/benchmarks.md).
.PHONY: bench
bench: protos
	$(BIN)/python -m bench.throughput $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(PROTO_DIR)/prospectsync/v1/*_pb2*.py $(PROTO_DIR)/prospectsync/v1/*_pb2*.pyi
