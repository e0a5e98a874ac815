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

# The main job on the bundled example guest: record it over an in-memory copy of examples/data,
# show what it did with its files, and replay it from the trace alone.
demo: setup
	$(BIN)/wasitrace record -o .demo/catalog.wtrace --mem examples/data::/data examples/catalog.wasm
	@echo; echo "== the guest's file operations (wasitrace show --filter ...)"
	$(BIN)/wasitrace show .demo/catalog.wtrace --filter 'op=open_at,rename_at,read_directory'
	@echo; echo "== per operation (wasitrace stats)"
	$(BIN)/wasitrace stats .demo/catalog.wtrace
	@echo; echo "== replayed from the trace alone (wasitrace replay)"
	$(BIN)/wasitrace replay .demo/catalog.wtrace

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check tracer replay tui tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/run.py
