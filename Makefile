# The two set-up commands of the README. Each makes the virtualenv it needs from scratch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint bench

$(BIN)/wasitrace: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/wasitrace

# Run the bundled example guest over a copy of examples/data held in memory, recording it.
demo: setup
	$(BIN)/wasitrace run --mem examples/data::/data examples/catalog.wasm

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check tracer replay tui tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/run.py
