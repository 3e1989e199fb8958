# metrics-gateway: `make run` starts the gateway, `make test` runs every test, the slow soak test
# too (CI runs it; `pytest -m "not slow"` skips the soak for a quicker local run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := proto/prometheus/remote.proto proto/io/prometheus/write/v2/remote_write_v2.proto \
          proto/gateway/write_views.proto

.PHONY: run test test-all lint typecheck proto bench fuzz clean prometheus docs golden

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/metrics-gateway serve $(ARGS)

# The integration tests drive Debian's real Prometheus 2.42; install it when missing.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus package (needed by the integration tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
	@systemctl disable --now prometheus >/dev/null 2>&1 || true

test: $(STAMP) prometheus lint typecheck
	$(BIN)/python -m pytest -q -rs

# The same as `make test` (kept for scripts that call it).
test-all: test

lint: $(STAMP)
	$(BIN)/ruff check gateway tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy gateway

proto: $(STAMP)
	rm -rf gateway/_pb && mkdir -p gateway/_pb
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=gateway/_pb --pyi_out=gateway/_pb $(PROTOS)
	find gateway/_pb -type d -exec touch {}/__init__.py \;

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

# A long property-based fuzz campaign of the decoders and the PromQL front door (FUZZ_EXAMPLES per
# test; see docs/reliability.md).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=campaign FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz

# Generated references (tests/test_reference_docs.py checks they are current).
docs: $(STAMP)
	$(BIN)/python -m gateway config-reference > docs/configuration.md
	$(BIN)/python -m gateway errors-reference > docs/errors.md

# Rewrite the golden DDL files after a reviewed schema change.
golden: $(STAMP)
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/storage/test_ddl.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
