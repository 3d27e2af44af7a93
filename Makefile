# The README's two commands: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format worker bench browser clean-var help

help:
	@echo "make run    start Workbench (web + worker, embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL)"
	@echo "make test   run the whole test suite"

$(STAMP): pyproject.toml requirements.lock scripts/find-python
	@set -e; \
	if [ ! -x $(PY) ]; then \
		python_bin=$$(scripts/find-python); \
		echo "Creating $(VENV) with $$python_bin"; \
		"$$python_bin" -m venv $(VENV); \
	fi; \
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25"; \
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[test]"; \
	touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py runworkbench --host $(HOST) --port $(PORT)

# Browser tests drive Debian's Chromium; install it when missing (root, or sudo).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

worker: $(STAMP)
	$(PY) manage.py rundramatiq --processes 1 --threads 4

bench: $(STAMP)
	$(PY) -m bench $(SCENARIO)
