# Two entry points for a fresh machine: `make reproduce` (the main job) and `make test`.
# Each creates the virtual environment .venv from pyproject.toml when it is missing or stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results

.PHONY: reproduce reproduce-full demo test test-all lint bench

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/weightsynth demo

reproduce: $(BIN)/.installed
	$(BIN)/weightsynth reproduce --out $(OUT) --quick

reproduce-full: $(BIN)/.installed
	$(BIN)/weightsynth reproduce --out $(OUT)-full

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

# every test runs in `make test`; test-all is kept as another name for it
test-all: test

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py
