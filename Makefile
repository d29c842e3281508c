PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-deps lint check-config run-llm run-media run-orchestrator e2e samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) test-deps lint check-config
	PDP_REQUIRE_ENGINES=1 $(BIN)/python -m pytest -q

# The real upstreams the tests run against, installed or built once per machine and cached in .cache/
# (git-ignored): PostgreSQL, Chromium and Node from Debian, newman and the openai npm package, and
# llama.cpp's llama-server built from the llama-cpp-python sdist (about 7 minutes the first time).
test-deps:
	bash .ci/system_deps.sh
	bash .ci/node_deps.sh
	bash .ci/llama_server.sh

# Types and lint are part of the test command, so they cannot drift (issue 11).
PACKAGES := shared_contracts service_common llm_gateway media_gateway orchestrator
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy $(PACKAGES)

# Every shipped config must load; each problem is printed with its YAML path (issue 8).
check-config: $(STAMP)
	$(BIN)/llm-gateway check-config config/llm_gateway.yaml
	$(BIN)/media-gateway check-config config/media_gateway.yaml
	$(BIN)/orchestrator check-config config/orchestrator.yaml

# `make run-llm PORT=9100` serves on another port (default 8100, 8200, 8300).
PORT ?=
PORT_ARG = $(if $(PORT),--port $(PORT),)

run-llm: $(STAMP)
	$(BIN)/llm-gateway $(PORT_ARG)

run-media: $(STAMP)
	$(BIN)/media-gateway $(PORT_ARG)

run-orchestrator: $(STAMP)
	$(BIN)/orchestrator $(PORT_ARG)

# The P0 flow end to end (issue 4): the three services as processes in mock mode; exit code = pass/fail.
e2e: $(STAMP)
	$(BIN)/python tests/e2e/run_e2e.py

# Agent input/output JSON samples in docs/samples/, regenerated from a mock run.
samples: $(STAMP)
	$(BIN)/python -m orchestrator.tools.samples

# Bounded load through the LLM Gateway with upstream faults injected (issue 6); outside `make test`.
LOAD_ARGS ?=
.PHONY: load
load: $(STAMP)
	$(BIN)/python -m bench.load.llm_load $(LOAD_ARGS)

# The same for the Media Gateway in front of a faulty fake ComfyUI.
.PHONY: load-media
load-media: $(STAMP)
	$(BIN)/python -m bench.load.media_load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var runs bench-results .pytest_cache .hypothesis .mypy_cache .ruff_cache

# Benchmarks (issue 7): outside `make test`; reports go to bench-results/ (git-ignored).
LITELLM_VENV    ?= .venv-litellm
LITELLM_VERSION ?= 1.108.7
LITELLM_STAMP   := $(LITELLM_VENV)/.installed-$(LITELLM_VERSION)
BENCH_ARGS      ?=

.PHONY: bench bench-compare bench-tools bench-profile

# wrk from Debian's packages when we may install it; otherwise the runner falls back to bench/perf/pyload.py.
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 \
		|| echo "wrk could not be installed: using the Python load generator (slower, see docs/performance.md)"; }

$(LITELLM_STAMP):
	$(PYTHON) -m venv $(LITELLM_VENV) || python3 -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)'
	touch $@

bench: $(STAMP) bench-tools
	$(BIN)/python -m bench.perf.bench $(BENCH_ARGS)

bench-compare: $(STAMP) bench-tools $(LITELLM_STAMP)
	$(BIN)/python -m bench.perf.bench --compare --litellm $(LITELLM_VENV)/bin/litellm $(BENCH_ARGS)

# py-spy under load: where the gateway's CPU goes (bench-results/profile-*.txt).
bench-profile: $(STAMP) bench-tools
	$(BIN)/python -m pip install --quiet py-spy
	$(BIN)/python -m bench.perf.profile $(BENCH_ARGS)

# The replay fixture set of the sample products (fixtures/llm, fixtures/media), built from the hand-written
# answers in fixtures/samples/ (issue 14); `GENERATOR_MODE=replay make e2e` runs on it.
.PHONY: replay-fixtures
replay-fixtures: $(STAMP)
	$(BIN)/python fixtures/build_samples.py

# The services' configs copied into the kustomization folder (issue 17), so `kubectl kustomize deploy/k8s` needs
# no --load-restrictor; run it after editing config/*.yaml (the new ConfigMap hash rolls the Deployments).
.PHONY: k8s-config
k8s-config:
	mkdir -p deploy/k8s/config
	cp config/llm_gateway.yaml deploy/k8s/config/llm_gateway.yaml
	cp config/media_gateway.yaml deploy/k8s/config/media_gateway.yaml
	cp config/orchestrator.yaml deploy/k8s/config/orchestrator.yaml
