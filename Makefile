# Yubin: the two commands a newcomer needs are `make lab` and `make test` (README; depth in docs/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint lab bench bench-reference soak chaos test-compose clean

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

# The reference lab the benchmark compares with: Debian's Postfix + Dovecot + NSD as the same two sites on
# 127.0.2.x (bench/reference_lab.py; needs root). `make bench-reference REFLAB=down` stops it.
REFLAB ?= up
bench-reference: $(STAMP)
	$(BIN)/python -m bench.reference_lab $(REFLAB)

# Do the queues give back what they took? N messages through a lab on free ports, then Redis memory, stream
# lengths and the AOF are compared with their start (docs/benchmark.md). SOAK_ARGS e.g. -n 5000.
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# kill -9 and pause the lab's processes while mail flows, then check every mailbox (docs/chaos.md).
# CHAOS_ARGS e.g. --seed 7, -n 500, --short (the CI form: 300 messages, 12 faults).
chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)
