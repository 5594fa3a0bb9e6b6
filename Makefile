# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The modules setup.py compiles with mypyc: an edit to one of them reinstalls, so that the
# built extension never shadows a newer source. They are built once veriot's dependencies
# (and mypy, a dev dependency) are installed, since mypyc type-checks them against those.
COMPILED := $(shell sed -n 's/^    "\(veriot\/.*\.py\)",$$/\1/p' setup.py)
# The hand-written C extensions (setup.py's NATIVE), rebuilt the same way when edited.
NATIVE := $(wildcard veriot/*/*.c)

.PHONY: demo test lint bench setup clean

$(STAMP): pyproject.toml setup.py $(COMPILED) $(NATIVE)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'setuptools>=77' wheel
	VERIOT_PURE_PYTHON=1 $(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/veriot demo

test: $(STAMP)
	$(BIN)/ruff check veriot tests bench
	$(BIN)/ruff format --check veriot tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check veriot tests bench
	$(BIN)/ruff format --check veriot tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build
	find veriot -name '*.so' -delete
	rm -f veriot_compiled__mypyc.*
