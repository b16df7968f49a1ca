# One entry point for people and CI. `make test` is what .ci/run runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell bash .ci/find-python)

.PHONY: venv test lint unit integration bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python >= 3.12 not found (see README: Requirements)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -ra

unit: venv
	$(VENV)/bin/pytest -ra tests/unit

integration: venv
	$(VENV)/bin/pytest -ra tests/integration

bench: venv
	$(PY) bench/pipeline_bench.py
	$(PY) bench/api_bench.py
	$(PY) bench/routing_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
