# falcopy: build, run, test.  `make run` and `make test` work on a fresh
# Debian bookworm machine as root: they install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BPF_DIR := agent/bpf
BPF_OBJ := $(BPF_DIR)/falcopy.bpf.o
PYTEST_ARGS ?=

.PHONY: all deps venv accel bpf run install test lint bench bench-engine clean dockerd image kind-up kind-load helm-install

all: venv accel bpf

.stamp-deps: scripts/install-system-deps.sh
	PYTHON=$(PYTHON) bash scripts/install-system-deps.sh
	touch $@

deps: .stamp-deps

# setuptools warns that the source folder `falcopy/` shadows the installed package: with an
# editable install that is the point, so that one notice is silenced
$(BIN)/falcopy: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e '.[dev,accel]'
	touch $@

venv: $(BIN)/falcopy

# The compiled fast loop (docs/performance.md, "The compiled fast loop"): the modules of
# falcopy.agent.accel.ACCELERATED compiled by Cython beside their .py (agent/fastpath.pxd
# types the loop, agent/state/fdops.pxd the fd factory).  The .py runs where an extension
# is absent, was built from other sources (the digest beside it) or FALCOPY_NO_ACCEL=1.
# Rebuilds only what changed.
accel: venv .stamp-deps
	$(BIN)/python scripts/build_accel.py

bpf: .stamp-deps
	$(MAKE) -C $(BPF_DIR)

dockerd: .stamp-deps
	bash scripts/dockerd-up.sh

run: venv accel bpf
	$(BIN)/falcopy agent

# `falcopy` on PATH: a link to this checkout's virtualenv (which has the BPF object built here)
PREFIX ?= /usr/local
install: venv accel bpf
	install -d $(PREFIX)/bin
	ln -sfn $(CURDIR)/$(BIN)/falcopy $(PREFIX)/bin/falcopy
	@echo "falcopy installed as $(PREFIX)/bin/falcopy"

# the suite with the compiled modules, then again on their .py the tests that exercise
# them (the fast loop and its ring walk, the prefilters, the fd table; test_accel checks
# which path ran)
ACCEL_TESTS ?= tests/agent/test_accel.py tests/agent/pipeline tests/agent/state \
	tests/agent/kernel/test_ring_walk.py tests/agent/kernel/test_ring_wrap.py
test: venv accel bpf dockerd
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)
	FALCOPY_NO_ACCEL=1 $(BIN)/pytest $(PYTEST_ARGS) $(ACCEL_TESTS)

lint: venv
	$(BIN)/ruff check .

bench-engine: venv
	$(BIN)/python -m tests.bench.engine_bench

bench: venv accel bpf dockerd bench-engine
	$(BIN)/pytest -m bench -o addopts='' -s tests/bench

clean:
	rm -rf $(VENV) .stamp-* build *.egg-info
	find agent -name '*.so' -delete -o -name '*.so.sha256' -delete
	$(MAKE) -C $(BPF_DIR) clean

# --- container image and kind (docs/deploy.md) -----------------------------------
IMAGE_REPO ?= falcopy
IMAGE_TAG ?= dev
BASE_IMAGE ?= falcopy-base:bookworm
KIND_CLUSTER ?= falcopy

# The local base is made with debootstrap (nothing can be pulled here); any
# other BASE_IMAGE (e.g. debian:bookworm-slim) is pulled by docker as usual.
# Local CAs are passed for pip behind a TLS-intercepting proxy (builder stage only).
image: dockerd
	if [ "$(BASE_IMAGE)" = "falcopy-base:bookworm" ]; then bash scripts/build-base-image.sh $(BASE_IMAGE); fi
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  --build-arg EXTRA_CA_CERTS="$$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null)" \
	  -t $(IMAGE_REPO):$(IMAGE_TAG) .

kind-up:
	kind create cluster --config kind-config.yaml --name $(KIND_CLUSTER)

kind-load: image
	kind load docker-image $(IMAGE_REPO):$(IMAGE_TAG) --name $(KIND_CLUSTER)

# kind's kubelets serve self-signed certificates: the agent skips their verification there
helm-install:
	helm upgrade --install falcopy charts/falcopy --namespace falcopy --create-namespace \
	  --set image.repository=$(IMAGE_REPO) --set image.tag=$(IMAGE_TAG) --set image.pullPolicy=Never \
	  --set agent.kubelet.insecure=true
