# optimlab: the single entry point.  Every target sets itself up from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.stamp
JOBS   ?= 2

.PHONY: demo test test-all bench lint docs clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.stamp-%: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[$*]"
	touch $@

demo: $(VENV)/.stamp-demo
	$(PY) -m optimlab.demo

test: $(VENV)/.stamp-test $(VENV)/.stamp-notebooks $(VENV)/.stamp-demo
	$(PY) -m pytest -n $(JOBS) -m "not slow" --doctest-modules optimlab tests

test-all: $(VENV)/.stamp-test $(VENV)/.stamp-notebooks $(VENV)/.stamp-demo
	$(PY) -m pytest -n $(JOBS) --doctest-modules optimlab tests

bench: $(VENV)/.stamp-bench
	$(PY) -m benchmarks.run $(BENCH_ARGS)

docs: $(VENV)/.stamp-docs
	$(PY) docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(VENV)/.stamp-lint $(VENV)/.stamp-test $(VENV)/.stamp-demo
	$(VENV)/bin/ruff format --check optimlab tests benchmarks notebooks
	$(VENV)/bin/ruff check optimlab tests benchmarks notebooks
	$(VENV)/bin/pyright

clean:
	rm -rf $(VENV) .pytest_cache build dist
