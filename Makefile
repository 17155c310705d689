# The commands CI and people use. `make test` and `make run` each do their own set-up:
# `make run` installs only what running needs; the dev tools come with `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install lint test unit integration e2e run demo console bench fuzz clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

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

e2e: install
	$(BIN)/pytest tests/e2e

# The demo world when no backend is configured, else the console (see `agape-ops run --help`).
run: $(RUN_STAMP)
	$(BIN)/agape-ops run

# The demo world laid out afresh: a sandbox database, queues and stand-ins on this machine.
demo: $(RUN_STAMP)
	$(BIN)/agape-ops demo --reset

console: $(RUN_STAMP)
	$(BIN)/agape-ops console

bench: install
	$(BIN)/python -m bench

# Property-based fuzzing: 10,000 generated cases per target; prints cases and unexpected errors.
fuzz: install
	FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/unit/test_fuzz.py -q -s -o timeout=3600 --durations=4

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
