# The commands CI and people use. `make test` and `make run` each do their own set-up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint test unit integration run console bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check agape_ops tests bench
	$(BIN)/ruff format --check agape_ops tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/agape-ops lint runbooks/

test: lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

run: install
	$(BIN)/agape-ops console

bench: install
	$(BIN)/python -m bench

# Property-based fuzzing: 10,000 generated cases per target; prints cases and unexpected errors.
fuzz: install
	FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/unit/test_fuzz.py -q -s -o timeout=3600 --durations=4

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
