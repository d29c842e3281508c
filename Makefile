PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test run-llm run-media run-orchestrator clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

run-llm: $(STAMP)
	$(BIN)/llm-gateway

run-media: $(STAMP)
	$(BIN)/media-gateway

run-orchestrator: $(STAMP)
	$(BIN)/orchestrator

clean:
	rm -rf $(VENV) var runs bench-results .pytest_cache .hypothesis
