# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs cnnlab into it, opens the TUI
#   make test   same set-up, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test check bench clean i18n

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cnnlab $(ARGS)

# One pytest worker per CPU (pytest-xdist's `auto`, counted at run time); a test file stays on
# one worker so its module fixtures are built once.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff format --check cnnlab engine export tui tests bench
	$(VENV)/bin/ruff check cnnlab engine export tui tests bench
	$(VENV)/bin/mypy cnnlab engine export tui
	$(PY) -m pytest -q -n auto --dist loadfile

# Translations: extract the marked strings (engine/, export/ and tui/; `Binding:3` is a key's footer label), merge them into each language's .po, compile the .mo
# (committed, so installs need no build step). Edit the .po files between `make i18n` runs.
LOCALE := engine/locale
i18n: $(STAMP)
	$(VENV)/bin/pybabel extract --project cnnlab --version 0.1.0 --no-location --sort-output -k Binding:3 -k _f:2 -o $(LOCALE)/cnnlab.pot engine export tui
	$(VENV)/bin/pybabel update --no-fuzzy-matching --ignore-pot-creation-date -D cnnlab -i $(LOCALE)/cnnlab.pot -d $(LOCALE)
	$(VENV)/bin/pybabel compile -D cnnlab -d $(LOCALE) --statistics

bench: $(STAMP)
	$(PY) bench/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
