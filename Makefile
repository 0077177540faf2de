# falcopy: build, run, test.  `make run` and `make test` work on a fresh
# Debian bookworm machine as root: they install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BPF_DIR := agent/bpf
BPF_OBJ := $(BPF_DIR)/falcopy.bpf.o
PYTEST_ARGS ?=

.PHONY: all deps venv bpf run test lint bench bench-engine clean dockerd image kind-up kind-load helm-install

all: venv bpf

.stamp-deps: scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	touch $@

deps: .stamp-deps

$(BIN)/falcopy: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/falcopy

bpf: .stamp-deps
	$(MAKE) -C $(BPF_DIR)

dockerd: .stamp-deps
	bash scripts/dockerd-up.sh

run: venv bpf
	$(BIN)/falcopy agent

test: venv bpf dockerd
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench-engine: venv
	$(BIN)/python -m tests.bench.engine_bench

bench: venv bpf dockerd bench-engine
	$(BIN)/pytest -m bench -o addopts='' -s tests/bench

clean:
	rm -rf $(VENV) .stamp-* build *.egg-info
	$(MAKE) -C $(BPF_DIR) clean
