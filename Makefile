# The two set-up commands of the README: `make demo` (the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test demo clean

$(BIN)/ksearch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(BIN)/ksearch

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .ksearch .pytest_cache
