# Two commands matter: `make run` (start Lens, zero configuration) and `make test`.
# Each creates .venv with the locked dependencies on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-lowest pytest lint imports typecheck clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Lens needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements/runtime.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/runtime.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.runtime

# The suite on the lowest versions pyproject.toml allows (requirements/lowest.lock), in its
# own environment; browser tests and the API fuzz test are left to `make test`.
LOWEST := .venv-lowest
$(LOWEST)/.installed: requirements/lowest.lock pyproject.toml
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -r requirements/lowest.lock
	$(LOWEST)/bin/python -m pip install --quiet --no-deps -e .
	@touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pytest -n auto -q -m "not browser and not fuzz" $(ARGS)

run: $(VENV)/.runtime
	$(BIN)/lens serve $(ARGS)

test: $(VENV)/.dev lint imports typecheck pytest

pytest: $(VENV)/.dev
	$(BIN)/python -m pytest -n auto $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check lens tests bench
	$(BIN)/ruff format --check lens tests bench

# The layers of docs/architecture.md (contracts in pyproject.toml).
imports: $(VENV)/.dev
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache
