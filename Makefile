# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck contracts pytest bench bench-api openapi clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/socialpub dev

test: lint typecheck contracts pytest

lint: $(STAMP)
	$(BIN)/ruff check socialpub tests bench
	$(BIN)/ruff format --check socialpub tests bench

typecheck: $(STAMP)
	$(BIN)/mypy socialpub

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/embedded_api.py
	$(BIN)/python bench/api.py

bench-api: $(STAMP)
	$(BIN)/python bench/api.py

# Regenerate the committed OpenAPI document (a test fails when it is out of date).
openapi: $(STAMP)
	$(BIN)/python -m socialpub.api.openapi api/openapi.json

clean:
	rm -rf $(VENV) .socialpub .mypy_cache .ruff_cache .pytest_cache
