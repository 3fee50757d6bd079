# Two entry points for a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config.yaml

.PHONY: setup system run test bench clean-data

setup: system $(STAMP)

system:
	@bash scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: setup
	$(BIN)/medarchive --config $(CONFIG) samples --if-empty
	$(BIN)/medarchive --config $(CONFIG) ingest data/drop || test $$? -eq 2
	$(BIN)/medarchive --config $(CONFIG) search "patient" --limit 10

test: setup
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/ocr_throughput.py
	$(BIN)/python bench/accuracy.py
