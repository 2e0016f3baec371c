# One entry point for set-up, the demo and the tests. Everything runs inside .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: setup demo test lint typecheck pytest schema clean bench

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(PLUGINS)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[dev,dask]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

demo: setup
	$(BIN)/trigml demo --out demo-output --overwrite

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest -n $(JOBS) --durations=15

test: lint typecheck pytest

schema: setup
	$(BIN)/trigml schema

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-output
