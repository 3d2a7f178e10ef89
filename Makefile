# trainledger: `make demo` runs the pipeline end to end; `make check` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-setup

.PHONY: setup check lint typecheck contracts guard test bench demo reliability clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

guard: $(STAMP)
	$(BIN)/python scripts/guard.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term-missing -q

check: guard lint typecheck contracts test

bench: $(STAMP)
	for script in bench/*.py; do [ "$$script" = bench/__init__.py ] || $(BIN)/python $$script || exit 1; done

demo: $(STAMP)
	$(BIN)/trainledger demo

reliability: $(STAMP)
	$(BIN)/python -m tests.reliability

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis .coverage .coverage.* var
