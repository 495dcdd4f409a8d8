# The entry points. Each target sets up what it needs: the virtualenv at .venv
# (pinned by pyproject.toml + constraints.txt) and the generated gRPC stubs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROTO_DIR := protos
PROTO_SRC := $(PROTO_DIR)/prospectsync/v1/prospect_sync.proto
STUBS := $(PROTO_DIR)/prospectsync/v1/prospect_sync_pb2.py
CONFIG ?= examples/demo.toml

.PHONY: run test protos lint venv clean bench-calls

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Stubs are generated, never committed: one command makes them from the .proto.
protos: $(STUBS)

$(STUBS): $(PROTO_SRC) $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -I $(PROTO_DIR) \
		--python_out=$(PROTO_DIR) --pyi_out=$(PROTO_DIR) --grpc_python_out=$(PROTO_DIR) \
		$(PROTO_SRC)

# Starts the embedded fake Pardot on loopback and the service on 127.0.0.1:50051.
FAKE_PORT ?= 8750
run: protos
	@set -m; $(BIN)/prospect-sync fake-pardot --port $(FAKE_PORT) --demo & fake=$$!; \
	trap 'kill $$fake 2>/dev/null' EXIT INT TERM; \
	$(BIN)/prospect-sync serve --config $(CONFIG)

test: protos
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: protos
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd $(PROTO_DIR) && ../$(BIN)/buf lint

# Pardot calls per identify for each strategy, cold and warm (the README's table).
bench-calls: protos
	$(BIN)/python bench/calls_per_identify.py

clean:
	rm -rf $(VENV) $(PROTO_DIR)/prospectsync/v1/*_pb2*.py $(PROTO_DIR)/prospectsync/v1/*_pb2.pyi
