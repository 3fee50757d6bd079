# Two entry points for a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config.yaml

.PHONY: setup system test-system run test lint bench

setup: system $(STAMP)

system:
	@bash scripts/install-system-packages.sh

test-system:
	@bash scripts/install-system-packages.sh --tests

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The main job: the drop-folder daemon, in the foreground (Ctrl-C stops it cleanly).
# An empty drop folder first gets a few generated sample scans, so there is something to see.
run: setup
	$(BIN)/medarchive --config $(CONFIG) samples --if-empty
	@echo "watching the drop folder; in another terminal try: $(BIN)/medarchive search patient"
	$(BIN)/medarchive --config $(CONFIG) watch

# What CI checks before the tests: lint, format and types (config in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: test-system setup
	cd tests/fhir_server && npm ci --no-audit --no-fund --silent
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/ocr_throughput.py
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/watch_latency.py
	$(BIN)/python bench/fuzz_intake.py
	$(BIN)/pip install --quiet -e '.[cluster]'
	$(BIN)/python bench/backlog_throughput.py
	$(BIN)/python bench/index_scale.py
	$(BIN)/python bench/web_latency.py
	cd tests/fhir_server && npm ci --no-audit --no-fund --silent
	$(BIN)/python bench/ehr_throughput.py
