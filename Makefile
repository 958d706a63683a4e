# Everything runs from a local virtualenv that the targets create on first use.
# Needs only Python 3.11+ on the PATH. `make demo` and `make test` are the entry points.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-postgres lint lint-imports typecheck bench bench-dispatch clean-data install \
	self-service

# (Re)install when the lock, the dev pins or the package metadata change.
$(STAMP): requirements.lock requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet -e . --no-deps
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The whole suite on SQLite; tests marked `postgres` skip unless OUTREACH_TEST_POSTGRES_URL is set.
test: $(STAMP)
	$(BIN)/python -m pytest -q

# Needs OUTREACH_TEST_POSTGRES_URL (see .ci/run, which creates a scratch database).
test-postgres: $(STAMP)
	$(BIN)/python -m pytest -q -m postgres

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The layers and the absence of import cycles (.importlinter, docs/architecture.md).
lint-imports: $(STAMP)
	$(BIN)/lint-imports

# Planning throughput and memory (bench/plan.py); e.g. make bench BENCH_ARGS="--accounts 100000".
bench: $(STAMP)
	$(BIN)/python bench/plan.py $(BENCH_ARGS)

# SMS and email dispatch through the real SDKs against the fakes (bench/dispatch.py).
bench-dispatch: $(STAMP)
	$(BIN)/python bench/dispatch.py $(BENCH_ARGS)

# The self-service page, an app of its own (docs/self-service.md); put a TLS proxy in front.
SELF_SERVICE_HOST ?= 127.0.0.1
SELF_SERVICE_PORT ?= 8090
self-service: $(STAMP)
	$(BIN)/uvicorn outreach.entry.self_service_app:app --host $(SELF_SERVICE_HOST) \
		--port $(SELF_SERVICE_PORT) --no-access-log

clean-data:
	rm -rf data
