# make demo: set up, start `logwarden run` on its embedded defaults, post the bundled real
#            audit logs to its HTTPS webhook, show the alerts, verify the ledger
# make test: set up and run the whole test suite (lint, types, tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-ledger bench-scan clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/python demo/run_demo.py

lint: $(VENV)/.test
	$(BIN)/ruff check src tests bench demo
	$(BIN)/ruff format --check src tests bench demo
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.test
	$(BIN)/python bench/detect.py

bench-ledger: $(VENV)/.runtime
	$(BIN)/python bench/ledger.py

bench-scan: $(VENV)/.runtime
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) bench/.data
