# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs cnnlab into it, opens the TUI
#   make test   same set-up, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cnnlab $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff format --check cnnlab engine export tui tests bench
	$(VENV)/bin/ruff check cnnlab engine export tui tests bench
	$(VENV)/bin/mypy cnnlab engine export tui
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
