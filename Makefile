# The two set-up commands of the README: `make demo` (the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-app test demo clean

# The light runtime (search, ingest, the app; no torch) and, for the tests, everything (`dev` includes `train`).
APP_STAMP := $(VENV)/.installed-app
DEV_STAMP := $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(APP_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@ $(APP_STAMP)

install-app: $(APP_STAMP)

install: $(DEV_STAMP)

test: install
	$(BIN)/python -m pytest

# The app at http://localhost:8501 over the sample corpus; the index is built on the first run only.
DEMO_CORPUS ?= sample_data/corpus.jsonl
DEMO_PORT ?= 8501

demo: install-app
	@$(BIN)/python -m ksearch.demo_index $(DEMO_CORPUS); state=$$?; \
	if [ $$state -eq 1 ]; then $(BIN)/ksearch ingest $(DEMO_CORPUS); elif [ $$state -ne 0 ]; then exit $$state; fi
	$(BIN)/streamlit run search_ui/app.py --server.port $(DEMO_PORT) --server.headless true

clean:
	rm -rf $(VENV) .ksearch .pytest_cache
