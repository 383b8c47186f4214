# Yubin: the two commands a newcomer needs are `make lab` and `make test` (README; depth in docs/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint lab bench chaos test-compose clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The docker compose lab: build, up, end-to-end tests against it, down -v (infra/docker/test-compose.sh).
# CI=true: also installs Debian's Docker, starts an engine if none runs and builds the base images locally.
test-compose: $(STAMP)
	bash infra/docker/test-compose.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# The native two-site lab (README; docs/lab.md): Ctrl-C stops it. LAB_ARGS e.g. --free-ports, --set YUBIN_X=1.
lab: $(STAMP)
	$(BIN)/yubin lab up $(LAB_ARGS)

# Throughput and latency of the lab (and of the reference Postfix lab when it is up). BENCH_ARGS e.g. -n 500.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# kill -9 and pause the lab's processes while mail flows, then check every mailbox (docs/chaos.md).
# CHAOS_ARGS e.g. --seed 7, -n 500, --short (the CI form: 300 messages, 12 faults).
chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)
